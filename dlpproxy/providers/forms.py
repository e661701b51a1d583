"""HTML form bodies: `multipart/form-data` parts by byte offset, and urlencoded pairs.

Parts are located by offsets so that a rewrite splices new bytes into one part and leaves every
other byte of the body (boundaries, headers, binary files) exactly as the client sent it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode

from dlpproxy.errors import BodyError

_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True, slots=True)
class Part:
    """One multipart part: its form field, file name and type, and where its bytes lie."""

    name: str
    filename: str | None
    content_type: str
    start: int
    end: int


def disposition_params(value: str) -> dict[str, str]:
    """`form-data; name="f"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt` -> {name, filename}.

    The RFC 5987 `key*` form, when present, wins over the plain one.
    """
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        text = raw.strip()
        if text.startswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        if key.endswith("*"):
            _, _, encoded = text.partition("''")
            extended[key[:-1].lower()] = unquote(encoded or text)
        else:
            plain[key.lower()] = text
    return plain | extended


def parse_multipart(body: bytes, boundary: str | None) -> list[Part]:
    """Split a multipart body; a missing boundary or an unterminated part is a BodyError."""
    if not boundary:
        raise BodyError("multipart body without a boundary parameter in Content-Type")
    delimiter = b"--" + boundary.encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0:
        raise BodyError(f"multipart body does not contain its boundary '{boundary}'")
    parts: list[Part] = []
    while True:
        pos += len(delimiter)
        if body[pos : pos + 2] == b"--":
            return parts
        head_start = body.find(b"\n", pos) + 1
        head_end = body.find(b"\r\n\r\n", head_start)
        if head_start <= 0 or head_end < 0:
            raise BodyError("truncated multipart body: a part's headers do not end")
        end = body.find(b"\r\n" + delimiter, head_end + 4)
        if end < 0:
            raise BodyError("truncated multipart body: the last part has no closing boundary")
        parts.append(_part(body[head_start:head_end], head_end + 4, end))
        pos = end + 2


def _part(head: bytes, start: int, end: int) -> Part:
    headers = {}
    for line in head.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    params = disposition_params(headers.get("content-disposition", ""))
    mime = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return Part(params.get("name", ""), params.get("filename"), mime, start, end)


def splice(body: bytes, edits: dict[tuple[int, int], bytes]) -> bytes:
    """Replace the byte ranges (start, end) by new bytes, keeping everything between."""
    out = bytearray()
    cursor = 0
    for (start, end), data in sorted(edits.items()):
        out += body[cursor:start] + data
        cursor = end
    return bytes(out + body[cursor:])


def parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """Name/value pairs in body order; percent-escapes must decode to UTF-8."""
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BodyError("urlencoded form body does not decode to UTF-8") from None


def dump_urlencoded(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode("ascii")
