"""The line protocol between the benchmark and a peer runner, and span helpers the runners share.

A runner reads `{"id", "text"}` JSON lines on stdin and writes one `{"id", "findings": [{"start",
"end", "type"}]}` line per record on stdout (or `{"id", "error"}` when the peer failed on that
record). Runners execute inside a peer's own venv, so this module uses the standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import TextIO

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_protocol_out: TextIO | None = None


def protect_stdout() -> None:
    """Keep the real stdout for the protocol and send everything else printed there (LLM Guard
    logs to stdout) to stderr, so that no stray line interleaves with the JSON lines."""
    global _protocol_out
    _protocol_out = sys.stdout
    sys.stdout = sys.stderr


def _emit(payload: dict[str, object]) -> None:
    (_protocol_out or sys.stdout).write(json.dumps(payload) + "\n")


def read_records() -> Iterator[tuple[str, str]]:
    """Yield (id, text) for each JSON line on stdin."""
    for raw in sys.stdin:
        if raw.strip():
            record = json.loads(raw)
            yield str(record["id"]), str(record["text"])


def write_findings(record_id: str, spans: list[tuple[int, int, str]]) -> None:
    findings = [{"start": s, "end": e, "type": t} for s, e, t in sorted(set(spans))]
    _emit({"id": record_id, "findings": findings})


def write_error(record_id: str, error: str) -> None:
    _emit({"id": record_id, "error": error})


def line_starts(text: str) -> list[int]:
    """Offsets where each line of `text` begins, splitting as Python's universal newlines do."""
    return [0] + [m.end() for m in _LINE_BREAK.finditer(text)]


def line_text(text: str, starts: list[int], index: int) -> str:
    """Line `index` (0-based) of `text` without its line break."""
    end = starts[index + 1] if index + 1 < len(starts) else len(text)
    return _LINE_BREAK.sub("", text[starts[index] : end])


def locate_value(text: str, starts: list[int], line_index: int, value: str) -> tuple[int, int]:
    """Character span of `value` reported on line `line_index`.

    Searches that line first, then the whole text (a peer may report a value from a joined or
    decoded line); when the value cannot be found the whole line is the span.
    """
    line_index = min(max(line_index, 0), len(starts) - 1)
    line = line_text(text, starts, line_index)
    if value:
        at = line.find(value)
        if at >= 0:
            return starts[line_index] + at, starts[line_index] + at + len(value)
        at = text.find(value)
        if at >= 0:
            return at, at + len(value)
    return starts[line_index], starts[line_index] + len(line)
