"""The one interface every detector implements."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, runtime_checkable

from dlpproxy.types import Finding


@runtime_checkable
class Detector(Protocol):
    """Finds sensitive content in one text.

    `detect` returns findings with offsets into `text` (segment left at 0; the engine sets it).
    It may be a plain method (CPU work: the engine runs it in a worker thread) or a coroutine
    function (a detector that batches across concurrent callers, e.g. the ONNX classifier).
    `detect_batch` is optional: bulk callers (`dlpproxy scan --jsonl`) use it when present.
    `quick(text)` is optional too: the findings when they cost no more than a linear scan (the
    engine then runs it on the event loop for small prompts, no thread hand-off), or None when
    the text needs the heavy path (`detect` in the pool).
    """

    name: str
    categories: frozenset[str]

    def detect(self, text: str) -> list[Finding] | Awaitable[list[Finding]]: ...
