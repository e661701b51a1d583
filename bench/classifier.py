"""Benchmark of the ONNX content classifier: quality on dev beside the TF-IDF baseline, CPU
latency per 2 KB prompt, GPU throughput by batch size and micro-batcher latency under load.

    python bench/classifier.py                       # CPU: p50/p99 per 2 KB prompt, 50 callers
    python bench/classifier.py --classifier-quality  # + dev metrics beside the baseline
    python bench/classifier.py --classifier-gpu      # + prompts/s at batch 1..256 (onnxruntime-gpu)
    python bench/classifier.py --classifier-record   # + write models/classifier-latency.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import Section  # noqa: E402
from dlpproxy.detect.classifier import MANIFEST, ContentClassifier, Manifest  # noqa: E402

DATA = Path(os.environ.get("DLPPROXY_CLASSIFIER_DATA", ROOT.parent / "shared/data/classifier"))
PROMPT_BYTES = 2048


def prompts_2kb(n: int) -> list[str]:
    """Real dev texts glued and cut into prompts of 2,048 UTF-8 bytes (at a character boundary)."""
    with gzip.open(DATA / "dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    data = "\n\n".join(texts).encode("utf-8")
    out, at = [], 0
    while len(out) < n:
        if at + PROMPT_BYTES > len(data):
            at = 0
        out.append(data[at : at + PROMPT_BYTES].decode("utf-8", "ignore"))
        at += PROMPT_BYTES
    return out


def detector(threads: int, max_batch: int = 64, max_wait_ms: float = 2.0) -> ContentClassifier:
    return ContentClassifier(
        Manifest.load(ROOT / "models" / MANIFEST), max_batch, max_wait_ms, threads
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_cpu(n: int) -> dict[str, float]:
    os.environ["DLPPROXY_CLASSIFIER_DEVICE"] = "cpu"
    det, prompts = detector(threads=1), prompts_2kb(n)
    for p in prompts[:20]:
        det.detect_sync(p)
    times = []
    for p in prompts:
        started = time.perf_counter()
        det.detect_sync(p)
        times.append((time.perf_counter() - started) * 1000.0)
    return {"p50_ms": round(pct(times, 0.5), 3), "p99_ms": round(pct(times, 0.99), 3), "prompts": n}


def bench_gpu_batches(seconds: float) -> dict[int, float]:
    det, prompts = detector(threads=4, max_batch=256), prompts_2kb(2048)
    print(f"device: {det.device}", flush=True)
    out: dict[int, float] = {}
    for batch in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        det.max_batch = batch
        chunk = prompts[:batch]
        det.detect_batch(chunk)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            det.detect_batch(chunk)
            done += batch
        out[batch] = round(done / (time.perf_counter() - started), 1)
        print(f"batch {batch:>3}: {out[batch]:>10.1f} prompts/s", flush=True)
    return out


async def _callers(
    det: ContentClassifier, prompts: list[str], callers: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await det.detect(prompts[i % len(prompts)])
            latencies.append((time.perf_counter() - started) * 1000.0)
            i += callers

    started = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(callers)))
    elapsed = time.perf_counter() - started
    return {
        "callers": callers,
        "p50_ms": round(pct(latencies, 0.5), 3),
        "p99_ms": round(pct(latencies, 0.99), 3),
        "prompts_per_s": round(len(latencies) / elapsed, 1),
    }


def bench_concurrent(
    callers: int, seconds: float, threads: int, max_batch: int
) -> dict[str, float]:
    det = detector(threads=threads, max_batch=max_batch, max_wait_ms=2.0)
    result = asyncio.run(_callers(det, prompts_2kb(1024), callers, seconds))
    result["batches"] = det._batcher.batches
    result["max_batch"] = max_batch
    result["device"] = det.device  # type: ignore[assignment]
    return result


def bench_quality() -> dict[str, object]:
    from dlpproxy.train.corpus import read_jsonl
    from dlpproxy.train.evaluate import baseline_predictions, format_table, report

    dev, train = read_jsonl(DATA / "dev.jsonl.gz"), read_jsonl(DATA / "train.jsonl.gz")
    labels = sorted({r.label for r in train})
    det = detector(threads=os.cpu_count() or 1, max_batch=128)
    started = time.perf_counter()
    found = det.detect_batch([r.text for r in dev])
    ms = (time.perf_counter() - started) * 1000.0 / len(dev)
    pred = [max(f, key=lambda x: x.score).type if f else "benign" for f in found]
    model = report(dev, pred, labels)
    print(format_table(f"model ({ms:.2f} ms/record in batch)", model))
    started = time.perf_counter()
    base = report(dev, baseline_predictions(train, dev), labels)
    print(format_table(f"baseline (train + predict {time.perf_counter() - started:.0f} s)", base))
    return {"model": model, "baseline": base}


def record(results: dict[str, object], others: list[Path]) -> None:
    """Speed figures for the model card (models/classifier-latency.json), this run's and others'."""
    merged: dict[str, object] = {}
    for path in others:
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    merged.update({k: v for k, v in results.items() if k not in ("date", "host")})
    merged["date"] = results["date"]
    target = ROOT / "models" / "classifier-latency.json"
    target.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options, prefixed so that bench/run_all.py can hold them beside the other benchmarks'."""
    opt = parser.add_argument
    opt("--classifier-quality", action="store_true", help="dev metrics beside the baseline")
    opt("--classifier-gpu", action="store_true", help="GPU throughput and concurrency")
    opt("--classifier-no-cpu", action="store_true", help="skip the CPU latency runs")
    opt("--classifier-seconds", type=float, default=2.0, help="length of each timed run")
    opt("--classifier-record", action="store_true", help="write models/classifier-latency.json")
    opt("--classifier-json", type=Path, help="write this run's figures to this file")
    opt("--classifier-merge", type=Path, action="append", default=[], help="figures of other runs")


def _markdown(results: dict[str, Any]) -> str:
    from bench.report import table

    parts = ["## Content classifier\n"]
    if "quality" in results:
        rows = []
        for name, rep in results["quality"].items():
            f1 = [f"{rep['per_class'][lb]['f1']:.3f}" for lb in sorted(rep["per_class"])]
            rows.append(
                [name, f"{rep['macro_f1']:.3f}", f"{100 * rep['benign_flagged']:.1f} %", *f1]
            )
        labels = sorted(results["quality"]["model"]["per_class"])
        head = ["", "macro F1", "benign flagged", *(f"F1 {lb}" for lb in labels)]
        parts.append("Dev set (other organisations than train):\n\n" + table(head, rows) + "\n")
    for key, title in (
        ("cpu", "CPU, one thread, per 2 KB prompt"),
        ("cpu_concurrent", "CPU, 50 callers"),
        ("gpu_concurrent", "GPU, 50 callers"),
    ):
        if key in results:
            r = results[key]
            parts.append(
                f"{title}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms"
                + (f", {r['prompts_per_s']} prompts/s" if "prompts_per_s" in r else "")
                + "\n"
            )
    if "gpu_batches" in results:
        rows = [[b, f"{v:,.0f}"] for b, v in results["gpu_batches"].items()]
        parts.append(table(["batch", "2 KB prompts/s"], rows) + "\n")
    return "\n".join(parts)


def run(args: argparse.Namespace) -> Section:
    """Every classifier measurement asked for; a Section for bench/run_all.py."""
    results: dict[str, Any] = {"date": datetime.date.today().isoformat(), "host": platform.node()}
    seconds = args.classifier_seconds
    if args.classifier_quality:
        results["quality"] = bench_quality()
    if not args.classifier_no_cpu:
        results["cpu"] = bench_cpu(500)
        results["cpu_concurrent"] = bench_concurrent(50, seconds, threads=1, max_batch=8)
    if args.classifier_gpu:
        results["gpu_batches"] = bench_gpu_batches(seconds)
        results["gpu_concurrent"] = bench_concurrent(50, seconds, threads=4, max_batch=64)
    if args.classifier_json:
        args.classifier_json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.classifier_record:
        record(results, args.classifier_merge)
    return Section("classifier", _markdown(results), results)


def main(argv: list[str] | None = None) -> int:
    from bench.report import run_alone

    return run_alone(__doc__ or "", add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
