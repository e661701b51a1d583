"""`dlpproxy scan`: the engine on a file, stdin or JSON lines. Exit 0 clean, 1 findings, 2 error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import IO, Any

from dlpproxy.detect import DESCRIPTIONS, REGISTRY
from dlpproxy.engine import BULK_BATCH, Engine
from dlpproxy.errors import DlpError
from dlpproxy.masking import mask
from dlpproxy.settings import DEFAULT_DETECTORS, Settings
from dlpproxy.types import PII, SECRET, Finding

HELP = "scan text or JSON lines for secrets, personal data, markings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="text file to scan, or - for stdin")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    out.add_argument(
        "--jsonl",
        metavar="IN",
        help='read JSON lines {"id", "text"} from IN (- for stdin), write one result line each',
    )
    parser.add_argument(
        "--detectors", metavar="A,B", help="run only these detectors (see --list-detectors)"
    )
    parser.add_argument("--list-detectors", action="store_true", help="list detectors and exit")
    parser.add_argument("--rules", metavar="DIR", type=Path, help="rule-pack folder (rules/)")
    parser.add_argument(
        "--secret-pack",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="extra secrets pack, our YAML or a gitleaks TOML (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    if args.list_detectors:
        for name in REGISTRY:
            default = " (default)" if name in DEFAULT_DETECTORS else ""
            print(f"{name:<11} {DESCRIPTIONS.get(name, '')}{default}")
        return 0
    if args.jsonl is None and args.file is None:
        raise DlpError("nothing to scan: give FILE, - for stdin, or --jsonl IN")
    with _engine(args) as engine:
        if args.jsonl is not None:
            return _scan_jsonl(engine, args.jsonl)
        text, note = _read_text(args.file)
        if note:
            print(f"dlpproxy scan: {note}", file=sys.stderr)
        result = engine.scan_sync(text)
        if args.json:
            _print_json(text, result.findings, result.elapsed_ms, engine.names)
        else:
            _print_human(args.file, text, result.findings)
        return 1 if result.findings else 0


def _engine(args: argparse.Namespace) -> Engine:
    settings = Settings()
    overrides: dict[str, Any] = {"extra_secret_packs": tuple(args.secret_pack)}
    if args.rules is not None:
        overrides["rules_dir"] = args.rules
    if args.detectors:
        overrides["detectors"] = tuple(n.strip() for n in args.detectors.split(",") if n.strip())
    return Engine(replace(settings, **overrides))


def _read_text(name: str) -> tuple[str, str]:
    """The input as text; invalid UTF-8 is replaced (offsets are of the decoded text), noted."""
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise DlpError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        note = f"input is not valid UTF-8 (first bad byte at {exc.start}); bad bytes read as U+FFFD"
        return raw.decode("utf-8", "replace"), note


def _print_human(name: str, text: str, findings: tuple[Finding, ...]) -> None:
    label = "<stdin>" if name == "-" else name
    for f in findings:
        line = text.count("\n", 0, f.start) + 1
        col = f.start - (text.rfind("\n", 0, f.start) + 1) + 1
        via = f" via {f.via}" if f.via else ""
        print(
            f"{label}:{line}:{col}: {f.category}/{f.type} [{f.detector}, {f.severity}, "
            f"{f.score:.2f}{via}] {_shown(text, f)}"
        )
    if not findings:
        print(f"{label}: no findings", file=sys.stderr)


def _print_json(
    text: str, findings: tuple[Finding, ...], ms: float, names: tuple[str, ...]
) -> None:
    items = [dict(f.as_dict(), masked=mask(text[f.start : f.end])) for f in findings]
    out = {"findings": items, "elapsed_ms": round(ms, 3), "detectors": list(names)}
    print(json.dumps(out, ensure_ascii=False, indent=2))


def _shown(text: str, f: Finding) -> str:
    """Secrets and personal data are masked; a marking or a classified region is shown briefly."""
    value = text[f.start : f.end]
    if f.category in (SECRET, PII):
        return mask(value)
    flat = " ".join(value.split())
    return flat if len(flat) <= 60 else flat[:57] + "..."


def _scan_jsonl(engine: Engine, source: str) -> int:
    """Scan JSON lines in batches; a bad line gets an error record (nothing is skipped silently)."""
    status = 0
    stream: IO[str]
    try:
        stream = (
            sys.stdin if source == "-" else open(source, encoding="utf-8", errors="replace")  # noqa: SIM115
        )
    except OSError as exc:
        raise DlpError(f"cannot read {source}: {exc.strerror or exc}") from None
    with stream:
        records = _records(stream)
        while batch := list(islice(records, BULK_BATCH)):
            good = [(rid, text) for rid, text, err in batch if err is None]
            results = iter(engine.scan_many([text for _, text in good]))
            lines = []
            for rid, _text, err in batch:
                if err is not None:
                    lines.append(json.dumps({"id": rid, "error": err}, ensure_ascii=False))
                    status = 2
                    continue
                result = next(results)
                if result.findings and status == 0:
                    status = 1
                found = [_short(f) for f in result.findings]
                lines.append(json.dumps({"id": rid, "findings": found}, ensure_ascii=False))
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
    return status


def _records(stream: IO[str]) -> Iterator[tuple[Any, str, str | None]]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield None, "", f"line {number}: invalid JSON ({exc.msg})"
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            rid = record.get("id") if isinstance(record, dict) else None
            yield rid, "", f'line {number}: expected an object with a string "text"'
            continue
        yield record.get("id", number), record["text"], None


def _short(f: Finding) -> dict[str, Any]:
    return {
        "start": f.start,
        "end": f.end,
        "type": f.type,
        "category": f.category,
        "detector": f.detector,
        "score": round(f.score, 4),
        "severity": f.severity,
        "rule": f.rule,
        "via": f.via,
    }
