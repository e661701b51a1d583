"""Reversible redaction: typed placeholders out, original values back in the answer.

A value becomes `[EMAIL_1]`, `[KR_RRN_2]`, ...; the same value keeps the same placeholder for the
whole conversation, so the model can still refer to "[EMAIL_1]" consistently and the answer is
restored for the user. Streams are restored too: a placeholder split across chunks
(`"[EMA"` + `"IL_1]"`) is held back until it is whole.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from dlpproxy.types import Finding

PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)_(\d+)\]")
PARTIAL = re.compile(r"\[[A-Z0-9_]*$")
MAX_PLACEHOLDER = 48


class PlaceholderMap:
    """value <-> placeholder for one conversation."""

    def __init__(self) -> None:
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def placeholder_for(self, kind: str, value: str) -> str:
        with self._lock:
            known = self._by_value.get(value)
            if known is not None:
                return known
            label = re.sub(r"[^A-Z0-9]+", "_", kind.upper()).strip("_")[:24] or "VALUE"
            self._counts[label] = self._counts.get(label, 0) + 1
            placeholder = f"[{label}_{self._counts[label]}]"
            self._by_value[value] = placeholder
            self._by_placeholder[placeholder] = value
            return placeholder

    def value_of(self, placeholder: str) -> str | None:
        return self._by_placeholder.get(placeholder)

    def __len__(self) -> int:
        return len(self._by_value)


class ConversationMaps:
    """Placeholder maps per conversation key, the least recently used dropped past `capacity`."""

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._maps: OrderedDict[str, PlaceholderMap] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> PlaceholderMap:
        with self._lock:
            found = self._maps.get(key)
            if found is None:
                found = self._maps[key] = PlaceholderMap()
                while len(self._maps) > self.capacity:
                    self._maps.popitem(last=False)
            else:
                self._maps.move_to_end(key)
            return found


def redact(text: str, findings: list[Finding], pmap: PlaceholderMap) -> str:
    """`text` with each finding's span replaced by its placeholder (overlaps merged first)."""
    spans: list[tuple[int, int, str]] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if spans and f.start < spans[-1][1]:
            start, end, kind = spans[-1]
            spans[-1] = (start, max(end, f.end), kind)
        else:
            spans.append((f.start, f.end, f.type))
    out: list[str] = []
    cursor = 0
    for start, end, kind in spans:
        out.append(text[cursor:start])
        out.append(pmap.placeholder_for(kind, text[start:end]))
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def restore(text: str, pmap: PlaceholderMap) -> str:
    """Put the original values back for every placeholder this conversation issued."""
    if "[" not in text or not len(pmap):
        return text

    def back(match: re.Match[str]) -> str:
        value = pmap.value_of(match.group())
        return match.group() if value is None else value

    return PLACEHOLDER.sub(back, text)


def split_unfinished(text: str) -> tuple[str, str]:
    """`text` cut before a trailing `[EMA` that may begin a placeholder, and that tail."""
    partial = PARTIAL.search(text)
    if partial is not None and len(text) - partial.start() < MAX_PLACEHOLDER:
        return text[: partial.start()], text[partial.start() :]
    return text, ""


class StreamRestorer:
    """Restores placeholders in text that arrives in pieces; holds back an unfinished `[EMA`."""

    def __init__(self, pmap: PlaceholderMap):
        self.pmap = pmap
        self.held = ""

    def feed(self, piece: str) -> str:
        text, self.held = split_unfinished(self.held + piece)
        return restore(text, self.pmap)

    def snapshot(self, whole: str) -> str:
        """A piece that repeats the whole text so far (ChatGPT web's message snapshots): restore
        it as a whole; an unfinished placeholder at its end is left for the next snapshot, which
        repeats it, instead of being carried over."""
        text, self.held = split_unfinished(whole)[0], ""
        return restore(text, self.pmap)

    def flush(self) -> str:
        rest, self.held = self.held, ""
        return restore(rest, self.pmap)
