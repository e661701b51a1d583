"""Run Samsung's CredSweeper (default rules, default ML validation) over JSON-line records.

Every record becomes an in-memory file `<id>/prompt.txt` (the same neutral name for every peer);
all records are scanned first and the ML validation then runs once over every candidate, as the
`credsweeper --path` command does for a folder. A finding's span is the reported value on its line.
"""

from __future__ import annotations

import io
import logging
import sys
from collections import defaultdict

from peer_io import (
    line_starts,
    locate_value,
    protect_stdout,
    read_records,
    write_error,
    write_findings,
)


def _span(text: str, starts: list[int], line_data: object) -> tuple[int, int]:
    """The value's span, from CredSweeper's position on the line when it agrees with the text."""
    value = getattr(line_data, "value", None) or ""
    line_index = int(getattr(line_data, "line_num", 1)) - 1
    begin = int(getattr(line_data, "value_start", -1))
    if 0 <= line_index < len(starts) and begin >= 0:
        at = starts[line_index] + begin
        if value and text[at : at + len(value)] == value:
            return at, at + len(value)
    return locate_value(text, starts, line_index, value)


def main() -> int:
    protect_stdout()
    logging.disable(logging.WARNING)
    from credsweeper.app import CredSweeper
    from credsweeper.file_handler.text_content_provider import TextContentProvider

    texts = dict(read_records())
    sweeper = CredSweeper()
    providers = [
        TextContentProvider((f"{rid}/prompt.txt", io.BytesIO(text.encode("utf-8"))), info=rid)
        for rid, text in texts.items()
    ]
    try:
        sweeper.scan(providers, None)
        sweeper.post_processing(None)
    except Exception as exc:  # reported per record so the table says why, not a traceback
        for rid in texts:
            write_error(rid, f"{type(exc).__name__}: {exc}")
        return 0
    spans: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for candidate in sweeper.credential_manager.get_credentials():
        for line_data in candidate.line_data_list:
            rid = str(line_data.path).rsplit("/", 1)[0]
            if rid in texts:
                text = texts[rid]
                spans[rid].append((*_span(text, line_starts(text), line_data), candidate.rule_name))
    for rid in texts:
        write_findings(rid, spans.get(rid, []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
