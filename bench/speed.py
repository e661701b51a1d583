"""Speed: per-prompt latency for 2 KB prompts, throughput on a large input, cost against size.

    .venv/bin/python bench/speed.py [--iterations 200] [--presidio-iterations 50] [--quick]

Runs in one process pinned to one core (when the OS allows), ours (`Engine.scan_sync` with the
default detectors, then each detector alone) beside presidio's default `AnalyzerEngine` on the
same texts. Warm-up first; median and p99 per prompt kind; presidio's throughput is measured on a
smaller input, fed as 2 KB prompts (spaCy refuses texts over a million characters).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import prompts
from bench.report import Section, run_alone, table

KB = 1024
MB = 1024 * KB
LINEARITY_KB = (1, 4, 16, 64, 256, 1024)
NO_BUDGET_MS = 3_600_000.0
Contender = tuple[str, Callable[[str], object] | str]


def pin_to_one_core() -> str:
    """Pin this process to CPU 0 and say what happened (for the output)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this OS)"
    os.sched_setaffinity(0, {0})
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"pinned to one core (CPU 0); load average at start {load}"


def sample(fn: Callable[[str], object], texts: Sequence[str], n: int, warmup: int) -> list[float]:
    """Milliseconds of `n` calls cycling over `texts`, after `warmup` untimed calls."""
    for i in range(warmup):
        fn(texts[i % len(texts)])
    timings = []
    for i in range(n):
        began = time.perf_counter()
        fn(texts[i % len(texts)])
        timings.append((time.perf_counter() - began) * 1000.0)
    return timings


def p50_p99(ms: Sequence[float]) -> tuple[float, float]:
    return statistics.median(ms), statistics.quantiles(ms, n=100, method="inclusive")[98]


def _engine(names: Sequence[str] | None) -> Any:
    """An engine without a time budget (a 10 MB scan must finish), default detectors if None."""
    from dlpproxy.engine import Engine
    from dlpproxy.settings import Settings

    settings = replace(Settings(), time_budget_ms=NO_BUDGET_MS)
    return Engine(settings if names is None else settings.with_detectors(tuple(names)))


def _attempt(label: str, build: Callable[[], Callable[[str], object]]) -> Contender:
    """(label, scan function), or (label, reason) when it cannot be built."""
    try:
        return label, build()
    except Exception as exc:  # the table says why, the benchmark goes on
        return label, f"n/a ({type(exc).__name__}: {exc})"[:160]


def _presidio_scan() -> Callable[[str], object]:
    from bench.presidio_default import build_analyzer

    analyzer = build_analyzer()
    return lambda text: analyzer.analyze(text, language="en")


def _scan_of(name: str) -> Callable[[str], object]:
    return _engine([name]).scan_sync


def _contenders() -> list[Contender]:
    """Ours with the default detectors, each default detector alone, presidio's default."""
    from dlpproxy.settings import DEFAULT_DETECTORS

    found = [_attempt(f"dlpproxy ({','.join(DEFAULT_DETECTORS)})", lambda: _engine(None).scan_sync)]
    for name in DEFAULT_DETECTORS:
        found.append(_attempt(f"  {name} alone", partial(_scan_of, name)))
    found.append(_attempt("presidio default", _presidio_scan))
    return found


def latency(args: argparse.Namespace) -> tuple[str, dict[str, object]]:
    texts = {kind: prompts.corpus(kind, 40) for kind in prompts.KINDS}
    rows: list[list[object]] = []
    data: dict[str, object] = {}
    medians: dict[str, dict[str, float]] = {}
    for label, fn in _contenders():
        if isinstance(fn, str):
            rows.append([label, *["-"] * (2 * len(texts)), fn])
            data[label.strip()] = {"error": fn}
            continue
        presidio = label.startswith("presidio")
        n = args.presidio_iterations if presidio else args.iterations
        cells, figures = [], {}
        for kind, batch in texts.items():
            p50, p99 = p50_p99(sample(fn, batch, n, warmup=3 if presidio else 10))
            cells += [f"{p50:.2f}", f"{p99:.2f}"]
            figures[kind] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "n": n}
            medians.setdefault(label, {})[kind] = p50
        print(f"  {label.strip()}: " + ", ".join(cells), flush=True)
        rows.append([label, *cells, f"n={n}"])
        data[label.strip()] = figures
    ours = next((m for label, m in medians.items() if label.startswith("dlpproxy (")), None)
    theirs = medians.get("presidio default")
    if ours and theirs:
        ratios = [f"{theirs[k] / ours[k]:.1f}x" for k in texts]
        rows.append(["presidio p50 / ours p50", *[c for r in ratios for c in (r, "")], ""])
        data["ratio_of_medians"] = {k: round(theirs[k] / ours[k], 2) for k in texts}
    sizes = {k: round(statistics.mean(len(t.encode()) for t in v)) for k, v in texts.items()}
    headers = ["scan (ms per prompt)"]
    for kind in texts:
        headers += [f"{kind} p50", f"{kind} p99"]
    md = (
        "### Latency per 2 KB prompt (ms)\n\n"
        + table([*headers, "note"], rows)
        + "\n\nMean prompt size in UTF-8 bytes: "
        + ", ".join(f"{k} {v}" for k, v in sizes.items())
        + ".\n"
    )
    return md, data


def _timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def _ours_throughput(
    big: str, chunks: list[str], mb: float
) -> tuple[list[list[object]], dict[str, object]]:
    """One large text through scan_sync, then the same text as 2 KB prompts through scan_many."""
    try:
        engine = _engine(None)
    except Exception as exc:
        return [["dlpproxy", "-", f"n/a ({type(exc).__name__}: {exc})"[:160]]], {}
    cases = (
        (f"dlpproxy, one {mb:.1f} MB text (scan_sync)", "one_text", lambda: engine.scan_sync(big)),
        (
            f"dlpproxy, {mb:.1f} MB as {len(chunks)} prompts of 2 KB (scan_many)",
            "scan_many",
            lambda: list(engine.scan_many(chunks)),
        ),
    )
    rows: list[list[object]] = []
    data: dict[str, object] = {"mb": round(mb, 2)}
    for label, key, call in cases:
        try:
            took = _timed(call)
        except Exception as exc:  # e.g. a detector that refuses the size: say so
            rows.append([label, "-", f"n/a ({type(exc).__name__}: {exc})"[:160]])
            continue
        rows.append([label, f"{took:.1f}", f"{mb / took:.2f}"])
        data[f"{key}_mb_s"] = round(mb / took, 3)
    return rows, data


def _presidio_throughput(chunks: list[str]) -> tuple[list[list[object]], dict[str, object]]:
    mb = sum(len(c.encode()) for c in chunks) / MB
    label = f"presidio default, {mb:.1f} MB as {len(chunks)} prompts of 2 KB"
    try:
        scan = _presidio_scan()
        took = _timed(lambda: [scan(c) for c in chunks])
    except Exception as exc:
        return [[label, "-", f"n/a ({type(exc).__name__}: {exc})"[:160]]], {}
    return [[label, f"{took:.1f}", f"{mb / took:.3f}"]], {"mb": round(mb, 2), "mb_s": mb / took}


def throughput(args: argparse.Namespace) -> tuple[str, dict[str, object]]:
    big = prompts.large_text(int(args.large_mb * MB))
    chunks = [big[i : i + 2 * KB] for i in range(0, len(big), 2 * KB)]
    rows, ours = _ours_throughput(big, chunks, len(big.encode()) / MB)
    data: dict[str, object] = {"ours": ours}
    if args.presidio_mb > 0:
        more_rows, data["presidio"] = _presidio_throughput(
            chunks[: max(1, int(args.presidio_mb * MB) // (2 * KB))]
        )
        rows += more_rows
    md = "### Throughput (MB = 2^20 bytes of UTF-8)\n\n" + table(["input", "s", "MB/s"], rows)
    return md + "\n", data


def linearity(args: argparse.Namespace) -> tuple[str, dict[str, object]]:
    try:
        engine = _engine(None)
    except Exception as exc:
        return f"### Cost against size\n\nn/a ({type(exc).__name__}: {exc})\n", {}
    rows: list[list[object]] = []
    data: dict[str, object] = {}
    base = 0.0
    sizes = [kb for kb in LINEARITY_KB if kb <= args.max_linear_kb]
    for kb in sizes:
        text = prompts.large_text(kb * KB, seed=kb)
        reps = max(3, min(30, 512 // kb))
        try:
            ms = statistics.median(sample(engine.scan_sync, [text], reps, warmup=1))
        except Exception as exc:  # a size the engine refuses is a row with the reason
            rows.append([f"{kb} KB", "-", "-", "-", f"n/a ({type(exc).__name__}: {exc})"[:160]])
            continue
        per_kb = ms / kb
        base = base or per_kb
        rows.append([f"{kb} KB", f"{ms:.2f}", f"{per_kb:.3f}", f"{per_kb / base:.2f}", reps])
        data[f"{kb}KB"] = {"ms": round(ms, 3), "ms_per_kb": round(per_kb, 4)}
    headers = [
        "text size",
        "ms (median)",
        "ms per KB",
        f"per-KB cost vs {sizes[0]} KB",
        "runs / note",
    ]
    return "### Cost against size (dlpproxy, default detectors)\n\n" + table(
        headers, rows
    ) + "\n", data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, default=200, help="timed scans per kind, ours")
    parser.add_argument("--presidio-iterations", type=int, default=50, help="same, presidio")
    parser.add_argument("--large-mb", type=float, default=10.0, help="throughput input, ours")
    parser.add_argument("--presidio-mb", type=float, default=1.0, help="throughput input, presidio")
    parser.add_argument("--max-linear-kb", type=int, default=1024, help="largest linearity size")
    parser.add_argument("--quick", action="store_true", help="small runs, for a smoke test")


def run(args: argparse.Namespace) -> Section:
    """Latency, throughput and cost against size on one core; the affinity is restored after."""
    if args.quick:
        args.iterations, args.presidio_iterations = 20, 5
        args.large_mb, args.presidio_mb, args.max_linear_kb = 1.0, 0.05, 64
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pinned = pin_to_one_core()
    print(f"speed: {pinned}", flush=True)
    parts = [f"## Speed\n\nOne process, {pinned}.\n"]
    data: dict[str, object] = {"pinning": pinned}
    try:
        for name, step in (
            ("latency", latency),
            ("throughput", throughput),
            ("linearity", linearity),
        ):
            md, figures = step(args)
            parts.append(md)
            data[name] = figures
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    parts.append(f"Load average at the end: {load} (other work on the machine skews p99 most).\n")
    data["load_at_end"] = load
    return Section("speed", "\n".join(parts), data)


def main(argv: Sequence[str] | None = None) -> int:
    return run_alone(__doc__ or "", add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
