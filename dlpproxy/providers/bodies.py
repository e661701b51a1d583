"""Content-Encoding decoding with a size cap, for the gateway and for tests.

mitmproxy decodes bodies itself at the proxy; the gateway receives raw bytes. Each decoder
stops as soon as the output passes `limit`, so a decompression bomb costs at most `limit`
bytes of memory and is refused with a BodyError.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
import zstandard

from dlpproxy.errors import BodyError

CHUNK = 64 * 1024
ZSTD_STEP = 256


def decode_body(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo `Content-Encoding` (a comma-separated list, applied in order) within `limit` bytes."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    data = raw
    for coding in reversed(codings):
        decoder = DECODERS.get(coding)
        if decoder is None:
            known = ", ".join(sorted(DECODERS))
            raise BodyError(f"unsupported Content-Encoding '{coding}' (supported: {known})")
        try:
            data = decoder(data, limit)
        except BodyError:
            raise
        except (zlib.error, brotli.error, zstandard.ZstdError, EOFError) as exc:
            raise BodyError(f"corrupt {coding} body: {exc}") from None
    if len(data) > limit:
        raise BodyError(f"body of {len(data)} bytes is over the {limit}-byte limit")
    return data


def _too_big(coding: str, limit: int) -> BodyError:
    return BodyError(
        f"{coding} body expands past the {limit}-byte limit (decompression bomb?); refused"
    )


def _zlib_family(data: bytes, limit: int, wbits: int, coding: str) -> bytes:
    decoder = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    while pending:
        out += decoder.decompress(pending, limit + 1 - len(out))
        if len(out) > limit:
            raise _too_big(coding, limit)
        pending = decoder.unconsumed_tail
        if decoder.eof:
            break
    if not decoder.eof:
        raise BodyError(f"truncated {coding} body: the compressed stream does not end")
    return bytes(out)


def _gzip(data: bytes, limit: int) -> bytes:
    return _zlib_family(data, limit, 16 + zlib.MAX_WBITS, "gzip")


def _deflate(data: bytes, limit: int) -> bytes:
    """`deflate` is meant to be zlib-wrapped, but some servers send raw deflate."""
    wbits = zlib.MAX_WBITS if data[:1] and (data[0] & 0x0F) == 8 else -zlib.MAX_WBITS
    try:
        return _zlib_family(data, limit, wbits, "deflate")
    except zlib.error:
        return _zlib_family(data, limit, -wbits, "deflate")


def _brotli(data: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray()
    for start in range(0, len(data), CHUNK):
        out += decoder.process(data[start : start + CHUNK], output_buffer_limit=limit + 1)
        while not decoder.can_accept_more_data() and len(out) <= limit:
            out += decoder.process(b"", output_buffer_limit=limit + 1 - len(out))
        if len(out) > limit:
            raise _too_big("br", limit)
    if not decoder.is_finished():
        raise BodyError("truncated br body: the compressed stream does not end")
    return bytes(out)


def _zstd(data: bytes, limit: int) -> bytes:
    """Fed in small steps: one zstd block may expand to 128 KiB, so output is checked often."""
    decoder = zstandard.ZstdDecompressor().decompressobj()
    out = bytearray()
    for start in range(0, len(data), ZSTD_STEP):
        out += decoder.decompress(data[start : start + ZSTD_STEP])
        if len(out) > limit:
            raise _too_big("zstd", limit)
        if decoder.eof:
            break
    if not decoder.eof:
        raise BodyError("truncated zstd body: the compressed stream does not end")
    return bytes(out)


def _identity(data: bytes, limit: int) -> bytes:
    return data


DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
    "identity": _identity,
}
