"""Detection quality on the labelled secrets and PII sets, ours beside the peers, in one run.

    .venv/bin/python bench/detection.py [--secrets-data F] [--pii-data F] [--sets secrets,pii]

Ours runs through `dlpproxy scan --jsonl` (only findings of the set's category count); the peers
run in their own venvs (bench/setup_peers.sh) and presidio's default analyzer in this process.
Recall is over labelled spans; the time column is one whole run over the set, start-up included.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import datasets, tools
from bench.datasets import Record
from bench.report import Section, ratio, run_alone, table
from bench.scoring import Found, Score, score

NATIONAL_IDS = ("kr_rrn", "cn_resident_id", "es_dni", "es_nie", "mx_curp", "sa_national_id")
ORDINARY_NUMBER = "number"


@dataclass(frozen=True, slots=True)
class Contender:
    """A tool to run on a set and which of its findings count there."""

    run: Callable[[Sequence[Record], float], tools.ToolRun]
    keep: Callable[[Found], bool]


def _any(_: Found) -> bool:
    return True


def _category(name: str) -> Callable[[Found], bool]:
    return lambda f: f.category == name


def _ours(detectors: Sequence[str], category: str) -> Contender:
    return Contender(lambda recs, t: tools.run_ours(detectors, recs, t), _category(category))


def _peer(key: str) -> Contender:
    return Contender(lambda recs, t: tools.run_peer(key, recs, t), _any)


SECRETS_CONTENDERS = (
    _ours(["secrets"], "secret"),
    _ours([], "secret"),
    _peer("detect-secrets"),
    _peer("credsweeper"),
    _peer("llm-guard-secrets"),
)
PII_CONTENDERS = (
    _ours(["pii"], "pii"),
    _ours([], "pii"),
    Contender(lambda recs, _t: tools.run_presidio(recs), _any),
    _peer("llm-guard-anonymize"),
)


def _note(run: tools.ToolRun) -> str:
    if not run.ok:
        return f"n/a ({run.error})"
    return f"{run.record_errors} records failed" if run.record_errors else ""


def _evaluate(
    contenders: Sequence[Contender], records: Sequence[Record], region: str, timeout: float
) -> list[tuple[tools.ToolRun, Score | None]]:
    results = []
    for contender in contenders:
        run = contender.run(records, timeout)
        print(f"  {run.tool}: {'done' if run.ok else _note(run)} ({run.seconds:.1f} s)", flush=True)
        results.append(
            (run, score(records, run.findings, contender.keep, region) if run.ok else None)
        )
    return results


def _per_type_table(
    results: list[tuple[tools.ToolRun, Score | None]], counts: dict[str, int], decoys: bool = False
) -> str:
    scored = [(run, s) for run, s in results if s is not None]
    rows = []
    for kind in sorted(counts, key=lambda k: (-counts[k], k)):
        cells = [
            (s.flagged_by_type if decoys else s.detected_by_type).get(kind, 0) for _, s in scored
        ]
        rows.append([kind, counts[kind], *cells])
    return table(["type", "n", *[run.tool for run, _ in scored]], rows)


def _data(run: tools.ToolRun, s: Score | None) -> dict[str, object]:
    data: dict[str, object] = {
        "tool": run.tool,
        "seconds": round(run.seconds, 3),
        "error": run.error,
    }
    data["record_errors"] = run.record_errors
    if s is not None:
        data.update(
            recall=round(s.recall, 4),
            spans=s.spans,
            detected=s.detected,
            fp_rate=round(s.fp_rate, 4),
            negatives=s.negatives,
            false_positives=s.false_positives,
            detected_by_type=dict(s.detected_by_type),
            spans_by_type=dict(s.spans_by_type),
            flagged_by_type=dict(s.flagged_by_type),
            decoys_by_type=dict(s.decoys_by_type),
            missed_ids=list(s.missed_ids),
            false_positive_ids=list(s.false_positive_ids),
        )
    return data


def secrets_section(path: Path, timeout: float) -> tuple[str, list[dict[str, object]]]:
    records = datasets.load(path)
    print(f"secrets: {path} ({len(records)} records)", flush=True)
    results = _evaluate(SECRETS_CONTENDERS, records, "record", timeout)
    summary = table(
        ["tool", "recall", "FP rate (negatives)", "time s", "note"],
        [
            [
                run.tool,
                ratio(s.detected, s.spans) if s else "n/a",
                ratio(s.false_positives, s.negatives) if s else "n/a",
                f"{run.seconds:.1f}" if run.ok else "-",
                _note(run),
            ]
            for run, s in results
        ],
    )
    counts = next((dict(s.spans_by_type) for _, s in results if s is not None), {})
    md = (
        f"### Secrets: `{path.name}` ({len(records)} records)\n\n{summary}\n\n"
        f"Detected spans per type (CredSweeper rule names):\n\n{_per_type_table(results, counts)}\n"
    )
    return md, [_data(run, s) for run, s in results]


def _pii_row(run: tools.ToolRun, s: Score | None) -> list[object]:
    if s is None:
        return [run.tool, "n/a", "n/a", "n/a", "n/a", "n/a", "-", _note(run)]
    lookalikes = [t for t in s.decoys_by_type if t != ORDINARY_NUMBER]
    return [
        run.tool,
        ratio(s.detected, s.spans),
        ratio(*s.recall_of(NATIONAL_IDS)),
        ratio(*s.flagged_of(lookalikes)),
        ratio(*s.flagged_of([ORDINARY_NUMBER])),
        ratio(s.false_positives, s.negatives),
        f"{run.seconds:.1f}",
        _note(run),
    ]


def pii_section(path: Path, timeout: float) -> tuple[str, list[dict[str, object]]]:
    records = datasets.load(path)
    print(f"pii: {path} ({len(records)} records)", flush=True)
    results = _evaluate(PII_CONTENDERS, records, "decoys", timeout)
    headers = [
        "tool",
        "recall",
        "national IDs recall",
        "look-alikes flagged",
        "order numbers flagged",
        "negatives FP",
        "time s",
        "note",
    ]
    summary = table(headers, [_pii_row(run, s) for run, s in results])
    scored = [s for _, s in results if s is not None]
    counts = dict(scored[0].spans_by_type) if scored else {}
    decoys = dict(scored[0].decoys_by_type) if scored else {}
    md = (
        f"### Personal data: `{path.name}` ({len(records)} records)\n\n{summary}\n\n"
        f"Detected spans per type:\n\n{_per_type_table(results, counts)}\n\n"
        f"Decoys flagged per type (look-alikes fail their checksum; `number` are order, ticket "
        f"and invoice numbers):\n\n{_per_type_table(results, decoys, decoys=True)}\n"
    )
    return md, [_data(run, s) for run, s in results]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secrets-data", type=Path, help="secrets set (default: DATA/secrets/dev.jsonl)"
    )
    parser.add_argument("--pii-data", type=Path, help="PII set (default: DATA/pii/dev.jsonl)")
    parser.add_argument("--sets", default="secrets,pii", help="which sets: secrets,pii")
    parser.add_argument("--tool-timeout", type=float, default=1200.0, help="seconds per tool run")


def run(args: argparse.Namespace) -> Section:
    """Run every contender on the chosen sets; the section holds the tables and the figures."""
    chosen = {s.strip() for s in args.sets.split(",") if s.strip()}
    parts: list[str] = []
    data: dict[str, object] = {}
    if "secrets" in chosen:
        md, rows = secrets_section(
            args.secrets_data or datasets.default_path("secrets"), args.tool_timeout
        )
        parts.append(md)
        data["secrets"] = rows
    if "pii" in chosen:
        md, rows = pii_section(args.pii_data or datasets.default_path("pii"), args.tool_timeout)
        parts.append(md)
        data["pii"] = rows
    header = (
        "## Detection\n\nRecall is over labelled spans (detected: a finding overlaps the span);"
        " time is one whole run over the set, start-up included.\n"
    )
    return Section("detection", "\n".join([header, *parts]), data)


def main(argv: Sequence[str] | None = None) -> int:
    return run_alone(__doc__ or "", add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
