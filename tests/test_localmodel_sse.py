"""The local model client's SSE parser reads raw byte chunks, cut anywhere."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

from dlpproxy.localmodel.sse import sse_data

BODY = (
    b': ping\r\n\r\nevent: message\r\nid: 7\r\ndata: {"a": 1}\r\n\r\n'
    b"data: x\rdata:y\r\r"
    b"data: \xc3\xa9t\xc3\xa9 \xe4\xbc\x9a\xe8\xae\xae\n\n"
    b"retry: 10\ndata: [DONE]\n\n"
    b"data: unfinished"
)
EXPECTED = ['{"a": 1}', "x\ny", "été 会议", "[DONE]", "unfinished"]


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def events(parts: list[bytes]) -> list[str]:
    async def collect() -> list[str]:
        return [data async for data in sse_data(_chunks(parts))]

    return asyncio.run(collect())


def test_events_of_one_chunk() -> None:
    assert events([BODY]) == EXPECTED


def test_events_are_the_same_wherever_the_chunks_are_cut() -> None:
    """Cuts inside CRLF pairs and inside multi-byte UTF-8 characters included."""
    rng = random.Random(5)
    for _ in range(500):
        parts, at = [], 0
        while at < len(BODY):
            step = rng.randint(1, 6)
            parts.append(BODY[at : at + step])
            at += step
        assert events(parts) == EXPECTED
    assert events([bytes([b]) for b in BODY]) == EXPECTED


def test_a_stream_ending_with_a_lone_cr_ends_its_last_line() -> None:
    assert events([b"data: last\r"]) == ["last"]
    assert events([b"data: a\r", b"\n\r", b"\n"]) == ["a"]


def test_an_empty_stream_has_no_events() -> None:
    assert events([]) == []
    assert events([b"", b": comment only\n\n"]) == []
