"""`dlpproxy index`: the fingerprint index of the company's code and documents.

    dlpproxy index add PATH... --label NAME [--public] [--progress] [--max-file-mb N]
    dlpproxy index list | stats | remove LABEL        [--db FILE]

Exit 0 on success, 2 on an error (a store from another version, a missing index).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from dlpproxy.errors import DlpError
from dlpproxy.fingerprint.indexer import Summary, index_paths
from dlpproxy.fingerprint.store import SCHEMA_VERSION, FingerprintStore
from dlpproxy.settings import Settings

HELP = "fingerprint index of the company's code and documents"
SHOWN_PROBLEMS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    db_help = "the index (default: settings.fingerprint_db, DLPPROXY_FINGERPRINT_DB)"
    parser.add_argument("--db", type=Path, metavar="FILE", help=db_help)
    # --db also after the action; SUPPRESS keeps a value given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, metavar="FILE", default=argparse.SUPPRESS, help=db_help)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add", parents=[common], help="index folders, git repositories or files under a label"
    )
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument("--label", required=True, help="name for this set (a repository, a team)")
    add.add_argument(
        "--progress", action="store_true", help="show a progress bar even when not on a terminal"
    )
    add.add_argument(
        "--max-file-mb", type=float, metavar="N", help="skip files larger than this (default 8)"
    )
    add.add_argument(
        "--public",
        action="store_true",
        help="public code (standard library, dependencies): never reported, and its fingerprints"
        " are subtracted from the company's",
    )
    add.add_argument("-v", "--verbose", action="store_true", help="list every skipped file")
    sub.add_parser("list", parents=[common], help="labels with their roots, files, fingerprints")
    sub.add_parser("stats", parents=[common], help="totals: files, lines, fingerprints, size")
    remove = sub.add_parser("remove", parents=[common], help="forget a label and its fingerprints")
    remove.add_argument("label")


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    path = args.db or settings.fingerprint_db
    if args.action == "add":
        return _add(args, path, settings)
    with FingerprintStore(path) as store:
        if args.action == "list":
            return _list(store)
        if args.action == "stats":
            return _stats(store)
        removed = store.remove_label(args.label)
        if removed == 0 and args.label not in {i.label for i in store.labels()}:
            raise DlpError(f"no label '{args.label}' in {path} (see `dlpproxy index list`)")
        print(f"removed label '{args.label}': {removed} files")
        return 0


def _add(args: argparse.Namespace, path: Path, settings: Settings) -> int:
    if not args.label.strip():
        raise DlpError("--label must not be empty")
    limit = settings.fingerprint_max_file_bytes
    if args.max_file_mb is not None:
        if args.max_file_mb <= 0:
            raise DlpError("--max-file-mb must be positive")
        limit = int(args.max_file_mb * 1024 * 1024)
    progress = args.progress or sys.stderr.isatty()
    with FingerprintStore(path, create=True) as store:
        summary = index_paths(
            store, args.paths, args.label.strip(), limit, progress, public=args.public
        )
    _print_summary(summary, args.verbose)
    return 0


def _print_summary(s: Summary, verbose: bool) -> None:
    rate = s.lines / s.seconds if s.seconds > 0 else 0.0
    print(
        f"label '{s.label}': {s.seen} files seen, {s.indexed} indexed, {s.unchanged} unchanged, "
        f"{s.removed} removed; {s.lines:,} lines, {s.fingerprints:,} fingerprints "
        f"in {s.seconds:.1f} s ({rate:,.0f} lines/s)"
    )
    if s.skipped:
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(s.skipped.items()))
        print(f"skipped: {parts}")
    for note, n in sorted(s.notes.items()):
        print(f"note: {n} files {note}")
    shown = s.problems if verbose else s.problems[:SHOWN_PROBLEMS]
    for item in shown:
        print(f"  skipped {item.path}: {item.reason}", file=sys.stderr)
    if len(s.problems) > len(shown):
        print(f"  ... {len(s.problems) - len(shown)} more (--verbose lists all)", file=sys.stderr)


def _list(store: FingerprintStore) -> int:
    labels = store.labels()
    if not labels:
        print(f"{store.path}: empty (add with `dlpproxy index add PATH --label NAME`)")
        return 0
    for info in labels:
        when = datetime.datetime.fromtimestamp(info.updated).strftime("%Y-%m-%d %H:%M")
        public = " [public: allow-list]" if info.public else ""
        print(
            f"{info.label}{public}: {info.files} files ({info.code_files} code), "
            f"{info.lines:,} lines, {info.fingerprints:,} fingerprints, updated {when}"
        )
        for root in info.roots:
            print(f"  {root}")
    return 0


def _stats(store: FingerprintStore) -> int:
    labels = store.labels()
    files = sum(i.files for i in labels)
    source = sum(i.source_bytes for i in labels)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(p.stat().st_size for p in _store_files(store.path))
    share = f" ({size / source:.1%} of the source)" if source else ""
    print(f"index: {store.path} (schema {SCHEMA_VERSION})")
    print(f"labels: {len(labels)}")
    print(f"files: {files:,} ({sum(i.code_files for i in labels):,} code)")
    print(f"lines: {sum(i.lines for i in labels):,}")
    print(f"source: {source:,} bytes")
    print(f"fingerprints: {sum(i.fingerprints for i in labels):,}")
    print(f"store size: {size:,} bytes{share}")
    index, _ = store.load()
    print(f"fingerprints left out (in many files, or public): {index.suppressed:,}")
    return 0


def _store_files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal")) if p.exists()]
