"""Run Yelp's detect-secrets (all plugins, default filters) over JSON-line records.

Each text is written to a scratch file named `prompt.txt` (a prompt has no file name, so every
peer sees the same neutral one) and scanned with `scan_file`, as `detect-secrets scan` does.
detect-secrets reports a line number and the secret value; the span is where that value sits.
"""

from __future__ import annotations

import os
import sys
import tempfile

from peer_io import (
    line_starts,
    locate_value,
    protect_stdout,
    read_records,
    write_error,
    write_findings,
)


def main() -> int:
    protect_stdout()
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    with tempfile.TemporaryDirectory() as scratch, default_settings():
        path = os.path.join(scratch, "prompt.txt")
        for record_id, text in read_records():
            try:
                with open(path, "w", encoding="utf-8", newline="") as handle:
                    handle.write(text)
                starts = line_starts(text)
                spans = [
                    (*locate_value(text, starts, s.line_number - 1, s.secret_value or ""), s.type)
                    for s in scan_file(path)
                ]
            except Exception as exc:  # a peer's failure on one record is data, not a crash
                write_error(record_id, f"{type(exc).__name__}: {exc}")
                continue
            write_findings(record_id, spans)
    return 0


if __name__ == "__main__":
    sys.exit(main())
