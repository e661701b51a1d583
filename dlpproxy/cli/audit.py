"""`dlpproxy audit`: read the audit store — tail, export for a SIEM, prune by retention."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from dlpproxy.audit.export import as_cef, as_jsonl
from dlpproxy.audit.store import iter_events, open_store, prune, recent
from dlpproxy.settings import default_audit_db

HELP = "read the audit store: tail, export (jsonl|cef), prune"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None, help="audit store (default: %(default)s)")
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    tail = sub.add_parser("tail", help="print the latest events")
    tail.add_argument("-n", type=int, default=20, help="how many (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    export = sub.add_parser("export", help="write events as JSON lines or CEF")
    export.add_argument("--format", choices=("jsonl", "cef"), default="jsonl")
    export.add_argument("--since", help="ISO date/time (default: everything)")
    export.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    prune_cmd = sub.add_parser("prune", help="delete events older than the retention period")
    prune_cmd.add_argument("--days", type=float, required=True, help="retention in days")


def run(args: argparse.Namespace) -> int:
    db = open_store(args.db or default_audit_db())
    if args.audit_command == "tail":
        return _tail(db, args.n, args.follow)
    if args.audit_command == "prune":
        print(f"deleted {prune(db, args.days)} events older than {args.days:g} days")
        return 0
    since = datetime.fromisoformat(args.since).timestamp() if args.since else 0.0
    render = as_cef if args.format == "cef" else as_jsonl
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    count = 0
    for row in iter_events(db, since):
        out.write(render(dict(row)) + "\n")
        count += 1
    if args.output:
        out.close()
        print(f"wrote {count} events to {args.output}", file=sys.stderr)
    return 0


def _tail(db: object, n: int, follow: bool) -> int:
    last = 0.0
    while True:
        for row in recent(db, n, last):  # type: ignore[arg-type]
            print(_line(row))
            last = max(last, float(row["ts"]))
        if not follow:
            return 0
        sys.stdout.flush()
        time.sleep(1.0)


def _line(row: dict[str, object]) -> str:
    when = datetime.fromtimestamp(float(row["ts"])).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[arg-type]
    kinds = sorted({f["type"] for f in json.loads(str(row["findings"]) or "[]")})
    return (
        f"{when} {row['id']} {row['action']:<7} {row['user'] or '-'} {row['host'] or '-'} "
        f"{row['categories'] or '-'} {','.join(kinds)}"
    )
