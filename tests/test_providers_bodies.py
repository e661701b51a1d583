"""Content-Encoding decoding with a size cap."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from dlpproxy.errors import BodyError
from dlpproxy.providers import decode_body

BODY = (
    b'{"model":"gpt-4o","messages":[{"role":"user","content":"'
    + b"quarterly numbers " * 200
    + b'"}]}'
)
LIMIT = 1024 * 1024
BOMB = b"\0" * (16 * 1024 * 1024)


def test_gzip_body_is_decoded():
    assert decode_body(gzip.compress(BODY), "gzip", LIMIT) == BODY


def test_zlib_wrapped_deflate_body_is_decoded():
    assert decode_body(zlib.compress(BODY), "deflate", LIMIT) == BODY


def test_raw_deflate_body_is_decoded():
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_body(raw.compress(BODY) + raw.flush(), "deflate", LIMIT) == BODY


def test_brotli_body_is_decoded():
    assert decode_body(brotli.compress(BODY), "br", LIMIT) == BODY


def test_zstd_body_is_decoded():
    assert decode_body(zstandard.ZstdCompressor().compress(BODY), "zstd", LIMIT) == BODY


def test_stacked_encodings_are_undone_in_reverse_order():
    twice = brotli.compress(gzip.compress(BODY))
    assert decode_body(twice, "gzip, br", LIMIT) == BODY


def test_no_encoding_returns_the_body():
    assert decode_body(BODY, None, LIMIT) == BODY


def test_gzip_bomb_is_refused():
    with pytest.raises(BodyError, match="gzip body expands past the 1048576-byte limit"):
        decode_body(gzip.compress(BOMB), "gzip", LIMIT)


def test_brotli_bomb_is_refused():
    with pytest.raises(BodyError, match="br body expands past the 1048576-byte limit"):
        decode_body(brotli.compress(BOMB), "br", LIMIT)


def test_zstd_bomb_is_refused():
    with pytest.raises(BodyError, match="zstd body expands past the 1048576-byte limit"):
        decode_body(zstandard.ZstdCompressor().compress(BOMB), "zstd", LIMIT)


def test_truncated_gzip_is_a_body_error():
    with pytest.raises(BodyError, match="truncated gzip body"):
        decode_body(gzip.compress(BODY)[:-12], "gzip", LIMIT)


def test_truncated_zstd_is_a_body_error():
    with pytest.raises(BodyError, match="truncated zstd body"):
        decode_body(zstandard.ZstdCompressor().compress(BODY)[:-6], "zstd", LIMIT)


def test_corrupt_brotli_is_a_body_error():
    with pytest.raises(BodyError, match="corrupt br body"):
        decode_body(b"not brotli at all", "br", LIMIT)


def test_unknown_encoding_is_a_body_error_listing_the_known_ones():
    with pytest.raises(BodyError, match="unsupported Content-Encoding 'compress'"):
        decode_body(BODY, "compress", LIMIT)


def test_identity_body_over_the_limit_is_refused():
    with pytest.raises(BodyError, match="over the 100-byte limit"):
        decode_body(BODY, "identity", 100)
