"""Evasion tricks against the whole engine with the shipped secrets pack."""

from __future__ import annotations

import base64
import random

import pytest

from dlpproxy.detect import views
from dlpproxy.engine import Engine
from dlpproxy.settings import Settings

KEY = "AKIAZ7QRST2VWX3YB4CD"
GH = "ghp_" + "R8kT2mWq9ZxV4nLp7YsB3cHd6JfG1aEu5Qo0"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(Settings(detectors=("secrets",)))


def secret_spans(engine: Engine, text: str) -> list[tuple[str, str]]:
    return [(text[f.start : f.end], f.via) for f in engine.scan_sync(text).findings]


def test_plain_key_is_found(engine: Engine) -> None:
    assert (KEY, "") in secret_spans(engine, f"aws_access_key_id = {KEY}")


def test_zero_width_spaces_inside_a_key(engine: Engine) -> None:
    hidden = "\u200b".join(KEY[i : i + 4] for i in range(0, len(KEY), 4))
    assert (hidden, "normalised") in secret_spans(engine, f"aws_access_key_id = {hidden}")


def test_cyrillic_homoglyphs_inside_a_token(engine: Engine) -> None:
    disguised = GH.replace("o", "\u043e").replace("a", "\u0430")
    assert (disguised, "normalised") in secret_spans(engine, f"token: {disguised}")


def test_base64_wrapped_key(engine: Engine) -> None:
    blob = base64.b64encode(f"aws_access_key_id={KEY}\n".encode()).decode()
    assert (blob, "base64") in secret_spans(engine, f"CONFIG_B64={blob}")


def test_hex_wrapped_token(engine: Engine) -> None:
    blob = f"github_token={GH}".encode().hex()
    assert (blob, "hex") in secret_spans(engine, f"payload = '{blob}'")


def test_double_base64_is_decoded_twice(engine: Engine) -> None:
    inner = base64.b64encode(f"token={GH}".encode()).decode()
    outer = base64.b64encode(f"data: {inner}".encode()).decode()
    assert (outer, "base64+base64") in secret_spans(engine, outer)


def test_fullwidth_letters_in_a_key(engine: Engine) -> None:
    wide = "".join(chr(ord(c) + 0xFEE0) for c in KEY)
    assert (wide, "normalised") in secret_spans(engine, f"キー：{wide}")


def test_binary_and_invalid_text_do_not_crash(engine: Engine) -> None:
    noise = bytes(range(256)).decode("latin-1") * 40 + "\udcff\ud800"
    assert engine.scan_sync(noise).findings == ()


def test_backtracking_bait_scans_quickly(engine: Engine) -> None:
    import time

    bait = "password=" + "a" * 200_000 + "!" + ("AKIA" * 50_000)
    started = time.perf_counter()
    engine.scan_sync(bait)
    assert time.perf_counter() - started < 5.0


def test_the_blob_prefilter_never_hides_a_blob_the_regexes_find() -> None:
    """`_blobs` skips texts without a run of 20 base64 characters; on random texts near that
    length it finds exactly what the two regexes alone find."""
    rng = random.Random(11)
    for n in range(3000):
        alphabet = "0123456789abcdef " if n % 2 else "aZ09+/_-=é Ab1F\n"
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        alone = [(m.span(), "hex") for m in views._HEX.finditer(text)]
        alone += [
            (m.span(), "base64")
            for m in views._BASE64.finditer(text)
            if views._looks_encoded(m.group())
        ]
        assert [(m.span(), via) for m, via in views._blobs(text)] == alone
