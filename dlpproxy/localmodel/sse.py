"""Server-sent events from an OpenAI-compatible stream: the `data:` payload of each event.

An event is a run of lines ended by a blank line; several `data:` lines join with newlines;
comments (`: ping`) and other fields (`event:`, `id:`, `retry:`) are skipped. Lines end with LF,
CRLF or CR. The parser reads the body's byte chunks itself (httpx's `aiter_bytes`): going
through `aiter_lines` costs a text decoder and a line decoder per chunk, more than the rest of
relaying a token.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator

_LINE_END = re.compile(rb"\r\n|\r|\n")


async def sse_data(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """The data of each event, in order; an unfinished last event is given too."""
    data: list[str] = []
    rest = b""
    async for chunk in chunks:
        if rest:
            chunk = rest + chunk
        tail = b""
        if chunk.endswith(b"\r"):  # maybe the first half of a CRLF: wait for the next byte
            chunk, tail = chunk[:-1], b"\r"
        lines = _LINE_END.split(chunk)
        rest = lines.pop() + tail
        for line in lines:
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                data.append(_value(line))
    rest = rest.rstrip(b"\r")
    if rest.startswith(b"data:"):
        data.append(_value(rest))
    if data:
        yield "\n".join(data)


def _value(line: bytes) -> str:
    """The value of a `data:` line (one space after the colon is not part of it)."""
    value = line[6:] if line.startswith(b"data: ") else line[5:]
    return value.decode("utf-8", "replace")
