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


def _reference_normalised(text: str) -> tuple[str, tuple[int, ...], tuple[int, ...]] | None:
    """The rule, character by character (the test's oracle): invisible characters dropped,
    full-width ASCII folded anywhere, look-alike letters folded inside words that also hold a
    Latin letter or digit."""
    from dlpproxy.detect.views import _HOMOGLYPHS, _INVISIBLE, _LATIN_OR_DIGIT, _WORD

    out: list[str] = []
    positions: list[int] = []
    changed: list[int] = []
    mixed_at = [False] * len(text)
    for word in _WORD.finditer(text):
        if _LATIN_OR_DIGIT.search(word.group()):
            mixed_at[word.start() : word.end()] = [True] * (word.end() - word.start())
    for i, ch in enumerate(text):
        if ch in _INVISIBLE:
            changed.append(i)
            continue
        mapped = ch
        if "\uff01" <= ch <= "\uff5e":
            mapped = chr(ord(ch) - 0xFEE0)
        elif mixed_at[i]:
            mapped = _HOMOGLYPHS.get(ch, ch)
        if mapped != ch:
            changed.append(i)
        out.append(mapped)
        positions.append(i)
    return ("".join(out), tuple(positions), tuple(changed)) if changed else None


def test_normalised_view_matches_the_character_by_character_rule_on_random_texts() -> None:
    import random

    rng = random.Random(11)
    alphabet = (
        "abcXYZ019 _-.,\n" "АВЕКаеорсΑΒοικ" "请在周五提交报告회의록주세요" "，：（）！０９ＡＺａｚ"
        "\u200b\u200d\ufeff\u00ad\u2060"
    )  # fmt: skip
    seen_changed = 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        view = normalised(text)
        want = _reference_normalised(text) if not text.isascii() else None
        if want is None:
            assert view is None, repr(text)
            continue
        seen_changed += 1
        assert view is not None, repr(text)
        assert (view.text, view.positions, view.changed) == want, repr(text)
    assert seen_changed > 1000
