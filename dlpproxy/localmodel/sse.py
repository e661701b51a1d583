"""Server-sent events from an OpenAI-compatible stream: the `data:` payload of each event.

An event is a run of lines ended by a blank line; several `data:` lines join with newlines;
comments (`: ping`) and other fields (`event:`, `id:`, `retry:`) are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator


async def sse_data(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """The data of each event, in order; an unfinished last event is given too."""
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)
