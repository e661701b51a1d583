"""Normalised and decoded views: evasion tricks are undone and offsets map back exactly."""

from __future__ import annotations

import base64

from dlpproxy.detect.views import decoded, normalised

KEY = "AKIAZ7QRST2VWX3YB4CD"


def test_plain_ascii_text_needs_no_normalised_view() -> None:
    assert normalised(f"key = {KEY}") is None


def test_korean_text_without_tricks_needs_no_normalised_view() -> None:
    assert normalised("주민등록번호를 알려주세요. 机密 文件") is None


def test_zero_width_characters_inside_a_key_are_removed() -> None:
    hidden = "AKIA\u200bZ7QR\u200dST2VWX3YB4CD"
    text = f"키: {hidden} 입니다"
    view = normalised(text)
    assert view is not None
    start = view.text.index(KEY)
    o_start, o_end, via = view.to_original(start, start + len(KEY))
    assert text[o_start:o_end] == hidden
    assert via == "normalised"


def test_cyrillic_homoglyph_inside_a_latin_token_is_folded() -> None:
    text = f"token AKI\u0410{KEY[4:]} end"
    view = normalised(text)
    assert view is not None
    assert KEY in view.text


def test_russian_words_are_not_folded() -> None:
    text = "пароль: секрет"
    assert normalised(text) is None


def test_fullwidth_digits_are_folded_to_ascii() -> None:
    text = "番号：８００１０１－１２３４５６７"
    view = normalised(text)
    assert view is not None
    assert "800101" in view.text


def test_a_finding_outside_changed_characters_is_not_marked_normalised() -> None:
    text = "plain AKIAZ7QRST2VWX3YB4CD and zero\u200bwidth"
    view = normalised(text)
    assert view is not None
    start = view.text.index(KEY)
    assert view.to_original(start, start + len(KEY)) == (6, 26, "")


def test_base64_blob_that_hides_text_is_decoded_and_maps_to_the_blob() -> None:
    blob = base64.b64encode(f"aws_access_key_id = {KEY}".encode()).decode()
    text = f"config: {blob} ok"
    views = decoded(text, depth=2)
    assert len(views) == 1
    assert KEY in views[0].text
    assert views[0].to_original(0, 3) == (8, 8 + len(blob), "base64")


def test_hex_blob_is_decoded() -> None:
    hexed = f"password={KEY}".encode().hex()
    views = decoded(f"x = '{hexed}'", depth=1)
    assert [v.via for v in views] == ["hex"]
    assert KEY in views[0].text


def test_nested_encoding_is_decoded_up_to_depth() -> None:
    inner = base64.b64encode(f"secret {KEY}".encode()).decode()
    outer = base64.b64encode(f"blob: {inner}".encode()).decode()
    deep = decoded(outer, depth=2)
    assert any(KEY in v.text and v.via == "base64+base64" for v in deep)
    assert not any(KEY in v.text for v in decoded(outer, depth=1))


def test_random_key_bytes_are_not_treated_as_text() -> None:
    assert decoded("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9mT4pLkV", depth=2) == []


def test_identifiers_are_not_decoded() -> None:
    assert decoded("self.assertAlmostEqualToTheExpectedValue(result)", depth=2) == []
