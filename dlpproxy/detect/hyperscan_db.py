"""Hyperscan databases shared by the rule detectors, and UTF-8 byte offsets back to str offsets.

Hyperscan scans bytes and reports byte offsets; the detectors hand it the UTF-8 form of a text
and map the offsets they keep back to Python string offsets with `char_offsets`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

try:
    import hyperscan
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    hyperscan = None  # type: ignore[assignment]


class HyperscanDb:
    """A compiled block-mode database; scratch space is per thread, as hyperscan requires.

    `flags` applies to every pattern or gives one value per pattern; `literal` uses hyperscan's
    pure-literal compiler (which takes only CASELESS, SINGLEMATCH and SOM_LEFTMOST).
    """

    def __init__(self, patterns: list[bytes], flags: int | list[int], literal: bool = False):
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=patterns,
            ids=list(range(len(patterns))),
            elements=len(patterns),
            flags=flags,
            literal=literal,
        )
        self._local = threading.local()

    def ids(self, data: bytes) -> list[int]:
        """Ids of the patterns that match in `data` (once each with SINGLEMATCH)."""
        hits: list[int] = []
        self._db.scan(data, match_event_handler=_collect_id, context=hits, scratch=self._scratch())
        return hits

    def spans(self, data: bytes) -> list[tuple[int, int, int]]:
        """(pattern id, start byte, end byte) of every match (start needs SOM_LEFTMOST)."""
        hits: list[tuple[int, int, int]] = []
        self._db.scan(
            data, match_event_handler=_collect_span, context=hits, scratch=self._scratch()
        )
        return hits

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._db)
        return scratch


def _collect_id(pattern_id: int, _start: int, _end: int, _flags: int, hits: Any) -> None:
    hits.append(pattern_id)


def _collect_span(pattern_id: int, start: int, end: int, _flags: int, hits: Any) -> None:
    hits.append((pattern_id, start, end))


# Every byte except UTF-8 continuation bytes (0x80-0xBF): deleting them leaves the continuations.
_NOT_CONTINUATION = bytes(range(0x80)) + bytes(range(0xC0, 0x100))


def char_offsets(data: bytes, offsets: set[int], text_len: int) -> Callable[[int], int]:
    """A byte offset -> str offset map for the given offsets (identity for ASCII text).

    A str offset is the byte offset less the continuation bytes before it; counting them
    piecewise between sorted offsets keeps the whole map one pass over the text.
    """
    if len(data) == text_len:
        return int
    table: dict[int, int] = {0: 0}
    last_byte = last_char = 0
    for offset in sorted(offsets):
        piece = data[last_byte:offset]
        last_char += len(piece) - len(piece.translate(None, _NOT_CONTINUATION))
        last_byte = offset
        table[offset] = last_char
    return table.__getitem__
