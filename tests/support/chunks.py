"""Chat Completions stream chunks for the stream-translator tests."""

from __future__ import annotations

from typing import Any


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One `chat.completion.chunk` of a local model's stream with this delta."""
    return {
        "id": "c1",
        "model": "local",
        "created": 1,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
