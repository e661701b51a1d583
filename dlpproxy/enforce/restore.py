"""Restoring placeholders in answers: whole JSON bodies and Server-Sent-Event streams.

In a stream the model's text arrives as deltas inside JSON events (`choices[0].delta.content`,
`delta.text`, `candidates[0].content.parts[0].text`, ...). Each JSON string path gets its own
`StreamRestorer`; a placeholder split across events is held back and the rest of it is put into
the next event of the same path. If that path does not come again (the final event, `[DONE]`),
the held text goes out in a copy of the last event that carried the path, so nothing is lost.
Events that need no change pass through byte for byte.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dlpproxy.enforce.placeholders import PlaceholderMap, StreamRestorer, restore

Path = tuple[str | int, ...]
_EVENT_END = re.compile(rb"\r?\n\r?\n")


def restore_json(body: bytes, pmap: PlaceholderMap) -> bytes:
    """A JSON answer with placeholders restored in every string; other bodies as text."""
    if not len(pmap) or b"[" not in body:
        return body
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return restore(body.decode("utf-8", "surrogateescape"), pmap).encode(
            "utf-8", "surrogateescape"
        )
    if isinstance(data, list) and len(data) > 1:
        return json.dumps(_restore_array_stream(data, pmap), ensure_ascii=False).encode()
    return json.dumps(
        _map_strings(data, lambda _p, s: restore(s, pmap)), ensure_ascii=False
    ).encode()


def _restore_array_stream(items: list[Any], pmap: PlaceholderMap) -> list[Any]:
    """A JSON array of stream chunks (Gemini without alt=sse): each string path is one stream,
    so a placeholder split across elements is joined; held text goes to the path's last element."""
    restorers: dict[Path, StreamRestorer] = {}
    owner: dict[Path, int] = {}
    out: list[Any] = []
    for index, item in enumerate(items):

        def feed(path: Path, value: str, index: int = index) -> str:
            owner[path] = index
            return restorers.setdefault(path, StreamRestorer(pmap)).feed(value)

        out.append(_map_strings(item, feed))
    for path, restorer in restorers.items():
        if restorer.held:
            held = restorer.flush()
            target = owner[path]
            out[target] = _map_strings(
                out[target], lambda p, v, path=path, held=held: v + held if p == path else v
            )
    return out


class SseRestorer:
    """Feed SSE bytes as they arrive, get restored SSE bytes back; `flush()` at the end."""

    def __init__(self, pmap: PlaceholderMap):
        self.pmap = pmap
        self._buffer = b""
        self._restorers: dict[Path, StreamRestorer] = {}
        self._templates: dict[Path, tuple[list[bytes], Any]] = {}
        self._last: dict[Path, str] = {}

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        out: list[bytes] = []
        while (match := _EVENT_END.search(self._buffer)) is not None:
            raw = self._buffer[: match.end()]
            self._buffer = self._buffer[match.end() :]
            out.append(self._event(raw))
        return b"".join(out)

    def flush(self) -> bytes:
        rest = self._event(self._buffer) if self._buffer.strip() else self._buffer
        self._buffer = b""
        return self._release(set()) + rest

    def _event(self, raw: bytes) -> bytes:
        lines = raw.splitlines()
        data_lines = [ln[5:].lstrip(b" ") if ln.startswith(b"data:") else None for ln in lines]
        payload = b"\n".join(d for d in data_lines if d is not None)
        try:
            data = json.loads(payload) if payload.strip()[:1] in (b"{", b"[") else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if data is None:
            return self._release(set()) + raw
        seen: set[Path] = set()
        changed = False

        def visit(path: Path, value: str) -> str:
            nonlocal changed
            seen.add(path)
            restorer = self._restorers.setdefault(path, StreamRestorer(self.pmap))
            last, self._last[path] = self._last.get(path, ""), value
            if len(last) >= 8 and len(value) > len(last) and value.startswith(last):
                new = restorer.snapshot(value)
            else:
                new = restorer.feed(value)
            changed = changed or new != value
            return new

        restored = _map_strings(data, visit)
        other = [ln for ln, d in zip(lines, data_lines, strict=True) if d is None and ln]
        for path in seen:
            self._templates[path] = (other, data)
        prefix = self._release(seen)
        if not changed:
            return prefix + raw
        return prefix + _render(other, restored, raw)

    def _release(self, seen: set[Path]) -> bytes:
        """Copies of earlier events carrying text held back on paths this event does not have."""
        out: list[bytes] = []
        for path, restorer in self._restorers.items():
            if path in seen or not restorer.held:
                continue
            other, template = self._templates[path]
            text = restorer.flush()
            copy = _map_strings(
                template, lambda p, s, path=path, text=text: text if p == path else s
            )
            out.append(_render(other, _blank_other_text(copy, path), b"\n\n"))
        return b"".join(out)


def _render(other: list[bytes], data: Any, raw: bytes) -> bytes:
    ending = b"\r\n\r\n" if raw.endswith(b"\r\n\r\n") else b"\n\n"
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return b"\n".join([*other, b"data: " + body]) + ending


def _blank_other_text(data: Any, keep: Path) -> Any:
    """In a copied event, only the released path keeps its text (no repeated deltas)."""
    text_keys = {"content", "text", "delta", "partial_json"}

    def blank(path: Path, value: str) -> str:
        if path == keep or not path or path[-1] not in text_keys:
            return value
        return ""

    return _map_strings(data, blank)


def _map_strings(data: Any, fn: Any, path: Path = ()) -> Any:
    if isinstance(data, str):
        return fn(path, data)
    if isinstance(data, dict):
        return {k: _map_strings(v, fn, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [_map_strings(v, fn, (*path, i)) for i, v in enumerate(data)]
    return data
