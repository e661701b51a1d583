"""Gateway overhead: the local model called directly versus through `dlpproxy gateway`, beside a
floor (a bare TCP relay) and a peer (the LiteLLM proxy).

    .venv/bin/python bench/gateway.py [--gateway-concurrency 1,20] [--gateway-requests 60,200]
                                      [--gateway-peers relay,litellm]

A real llama-cpp-python server with the tiny test model (tests/support/tiny_gguf.py, made
offline) is the local model; `dlpproxy gateway` runs as its own process with the default
detectors and a policy that reroutes secrets to that server, so every request through it is
scanned, decided, translated to the local model's chat API and streamed back. The prompt holds
an AWS key id. Beside it, in front of the same server and each in its own process: `relay`
(bench/peers/tcp_relay.py, bytes only: what one more process in the path costs) and `litellm`
(LiteLLM's proxy from .peers/litellm, left out with a note when not installed). Each request
streams (`stream: true`, temperature 0); the client measures time to first token (the first
event with text) and total time. Two answer lengths: `short`, where the model stops by itself (a
sentence of about 5 tokens), and `long`, where end-of-sequence is banned (`logit_bias`) so that
it writes `--gateway-long-tokens` tokens. At each level the setups take turns in slices, so that
a change in the machine's load falls on all alike. Throughput is completed streams per second of
wall time; loss = 1 - setup / direct. Every answer is compared with the direct ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench import gateway_stack as stack
from bench.proxy import unpin
from bench.report import Section, table
from bench.speed import p50_p99

ROUNDS = 5
PEERS = ("relay", "litellm")
PROMPT = (
    "Our deploy script fails with AccessDenied for AKIAR5TQ2MXW7KZP4VNJ, the key in "
    "deploy/env.sh. Which IAM permission is missing for s3:PutObject on the release bucket?"
)


@dataclass(frozen=True, slots=True)
class Level:
    """One setup at one concurrency: latency percentiles in ms, streams per second."""

    setup: str
    answer: str
    streams: int
    requests: int
    errors: int
    ttft_p50: float
    ttft_p99: float
    total_p50: float
    total_p99: float
    per_second: float
    cpu_ms: float | None = None  # the gateway process's CPU time per stream


def request_body(long_tokens: int) -> dict[str, Any]:
    """The streamed chat request: short (the model stops) or `long_tokens` long (EOS banned)."""
    body: dict[str, Any] = {"model": "tiny", "stream": True, "temperature": 0, "max_tokens": 64,
                            "messages": [{"role": "user", "content": PROMPT}]}  # fmt: skip
    if long_tokens:
        from tests.support.tiny_gguf import EOS

        body |= {"max_tokens": long_tokens, "logit_bias": {str(EOS): -100}}
    return body


async def one_stream(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[float, float, str]:
    """(time to first token ms, total ms, text) of one streamed chat completion."""
    began = time.perf_counter()
    first, text = 0.0, []
    async with client.stream("POST", url, json=body, headers=headers) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code}: {(await answer.aread())[:200]!r}")
        async for line in answer.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            piece = (choices[0].get("delta") or {}).get("content") or ""
            if piece and not first:
                first = time.perf_counter()
            text.append(piece)
    done = time.perf_counter()
    return ((first or done) - began) * 1000.0, (done - began) * 1000.0, "".join(text)


async def drive(
    clients: list[httpx.AsyncClient], url: str, headers: dict[str, str], count: int,
    body: dict[str, Any],
) -> tuple[list[tuple[float, float, str]], int, float]:  # fmt: skip
    """`count` streams over len(clients) concurrent workers: results, errors, wall seconds."""
    todo = iter(range(count))
    results: list[tuple[float, float, str]] = []
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in todo:
            try:
                results.append(await one_stream(client, url, headers, body))
            except (httpx.HTTPError, RuntimeError, json.JSONDecodeError):
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return results, errors, time.perf_counter() - began


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    headers: dict[str, str]
    pid: int | None = None  # a process whose CPU time is counted (with its children)


def slice_order(names: Sequence[str], k: int) -> list[str]:
    """The setups in slice `k`, rotated so that none always runs right after the same one."""
    shift = k % len(names)
    return [*names[shift:], *names[:shift]]


def mismatches(got: dict[str, list[tuple[float, float, str]]]) -> dict[str, int]:
    """Per setup other than `direct`: answers that differ from every direct answer."""
    direct_texts = {text for _, _, text in got["direct"]}
    return {
        name: sum(1 for _, _, text in results if text not in direct_texts)
        for name, results in got.items()
        if name != "direct"
    }


async def measure(
    targets: dict[str, Target], levels: Sequence[tuple[str, int, int]], long_tokens: int
) -> tuple[list[Level], dict[str, int]]:
    """Every setup at each (answer, streams, requests) level, in alternating slices; the answers
    through each setup are compared with the direct ones (temperature 0: the same text)."""
    out: list[Level] = []
    mismatched = {name: 0 for name in targets if name != "direct"}
    for answer, streams, requests in levels:
        body = request_body(long_tokens if answer == "long" else 0)
        got: dict[str, list[tuple[float, float, str]]] = {name: [] for name in targets}
        errors, wall = dict.fromkeys(targets, 0), dict.fromkeys(targets, 0.0)
        cpu: dict[str, float] = {}
        async with contextlib.AsyncExitStack() as clients:
            pool = {
                name: [await clients.enter_async_context(httpx.AsyncClient(timeout=300))
                       for _ in range(streams)]
                for name in targets
            }  # fmt: skip
            for name, t in targets.items():  # warm-up: connections, caches
                await drive(pool[name], t.url, t.headers, streams * 2, body)
            cut = [requests * k // ROUNDS for k in range(ROUNDS + 1)]
            for k, (start, end) in enumerate(itertools.pairwise(cut)):
                for name in slice_order(list(targets), k):
                    t = targets[name]
                    before = stack.tree_cpu_seconds(t.pid) if t.pid else 0.0
                    results, failed, seconds = await drive(
                        pool[name], t.url, t.headers, end - start, body
                    )
                    if t.pid:
                        cpu[name] = cpu.get(name, 0.0) + stack.tree_cpu_seconds(t.pid) - before
                    got[name] += results
                    errors[name] += failed
                    wall[name] += seconds
        for name, count in mismatches(got).items():
            mismatched[name] += count
        for name in targets:
            level = _level(name, answer, streams, requests, got[name], errors[name], wall[name])
            if name in cpu:
                level = replace(level, cpu_ms=round(cpu[name] * 1000 / requests, 2))
            out.append(level)
            print(_progress(level), flush=True)
    return out, mismatched


def _level(
    name: str, answer: str, streams: int, requests: int,
    results: list[tuple[float, float, str]], errors: int, wall: float,
) -> Level:  # fmt: skip
    ttft = [r[0] for r in results] or [float("nan")] * 2
    total = [r[1] for r in results] or [float("nan")] * 2
    (t50, t99), (a50, a99) = p50_p99(ttft), p50_p99(total)
    per_second = round(len(results) / wall, 1) if wall else 0.0
    return Level(name, answer, streams, requests, errors, round(t50, 2), round(t99, 2),
                 round(a50, 2), round(a99, 2), per_second)  # fmt: skip


def _progress(level: Level) -> str:
    return (
        f"  {level.setup:8} {level.answer:5} x{level.streams:<3} ttft p50 {level.ttft_p50} ms, "
        f"total p50 {level.total_p50} ms, {level.per_second}/s, errors {level.errors}"
    )


def _row(lv: Level) -> list[object]:
    cpu = "-" if lv.cpu_ms is None else lv.cpu_ms
    return [lv.setup, lv.answer, lv.streams, lv.requests, lv.errors, lv.ttft_p50, lv.ttft_p99,
            lv.total_p50, lv.total_p99, lv.per_second, cpu]  # fmt: skip


def _added(direct: Level, through: Level) -> list[object]:
    """What `through` adds to `direct`: latency in ms and the throughput loss."""
    loss = (
        f"**{(1 - through.per_second / direct.per_second) * 100:.1f} % loss**"
        if direct.per_second
        else "-"
    )
    return ["**added / loss**", direct.answer, direct.streams, "", "",
            f"**{through.ttft_p50 - direct.ttft_p50:+.2f} ms**",
            f"{through.ttft_p99 - direct.ttft_p99:+.2f} ms",
            f"{through.total_p50 - direct.total_p50:+.2f} ms",
            f"{through.total_p99 - direct.total_p99:+.2f} ms", loss, ""]  # fmt: skip


def render(levels: Sequence[Level], mismatched: dict[str, int], note: str) -> str:
    """The table: at each level the direct row, then each other setup's row followed by what it
    adds to direct."""
    groups: dict[tuple[str, int], list[Level]] = {}
    for lv in levels:
        groups.setdefault((lv.answer, lv.streams), []).append(lv)
    rows: list[list[object]] = []
    for group in groups.values():
        direct = next(lv for lv in group if lv.setup == "direct")
        rows.append(_row(direct))
        for through in (lv for lv in group if lv is not direct):
            rows += [_row(through), _added(direct, through)]
    head = ["setup", "answer", "streams", "requests", "errors", "TTFT p50 ms", "TTFT p99 ms",
            "total p50 ms", "total p99 ms", "streams/s", "process CPU ms/stream"]  # fmt: skip
    differ = ", ".join(f"{name} {count}" for name, count in mismatched.items())
    return (
        f"## Gateway overhead (local model direct vs through `dlpproxy gateway`)\n\n{note}\n\n"
        f"{table(head, rows)}\n\nAnswers that differ from every direct answer: {differ}.\n"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateway-concurrency", default="1,20", help="concurrent streams")
    parser.add_argument(
        "--gateway-requests", default="60,200", help="timed streams per level (one or each)"
    )
    parser.add_argument(
        "--gateway-long-tokens", type=int, default=128, help="tokens of a long answer (0: none)"
    )
    parser.add_argument("--gateway-start-timeout", type=float, default=120.0, help="seconds")
    parser.add_argument(
        "--gateway-peers", default=",".join(PEERS), help=f"setups beside the gateway: {PEERS}"
    )


def _levels(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    streams = [int(x) for x in args.gateway_concurrency.split(",") if x.strip()]
    counts = [int(x) for x in args.gateway_requests.split(",") if x.strip()]
    if len(counts) == 1:
        counts *= len(streams)
    if len(counts) != len(streams) or not streams:
        raise SystemExit("--gateway-requests: give one count, or one per concurrency level")
    answers = ("short", "long") if args.gateway_long_tokens else ("short",)
    return [(a, n, c) for a in answers for n, c in zip(streams, counts, strict=True)]


@contextlib.contextmanager
def started(
    folder: Path, peers: Sequence[str], timeout: float, skipped: dict[str, str]
) -> Iterator[dict[str, Target]]:
    """The local model and the setups in front of it, in the order they take turns; a peer that
    is not installed or does not start is left out, with the reason in `skipped`."""
    with contextlib.ExitStack() as procs:
        local_url = procs.enter_context(stack.local_server(folder, timeout))
        targets = {"direct": Target(f"{local_url}/chat/completions", {})}
        if "relay" in peers:
            url, pid = procs.enter_context(stack.relay(folder, local_url, timeout))
            targets["relay"] = Target(f"{url}/chat/completions", {}, pid)
        if "litellm" in peers and (missing := stack.litellm_missing()):
            skipped["litellm"] = missing
        elif "litellm" in peers:
            try:
                url, key, pid = procs.enter_context(stack.litellm(folder, local_url, timeout))
            except RuntimeError as exc:
                skipped["litellm"] = f"LiteLLM did not start: {exc}"
            else:
                auth = {"authorization": f"Bearer {key}"}
                targets["litellm"] = Target(f"{url}/chat/completions", auth, pid)
        url, key, pid = procs.enter_context(stack.gateway(folder, local_url, timeout))
        targets["gateway"] = Target(
            f"{url}/chat/completions", {"authorization": f"Bearer {key}"}, pid
        )
        yield targets


def _note(args: argparse.Namespace, setups: Sequence[str], skipped: dict[str, str]) -> str:
    long = args.gateway_long_tokens
    answers = f" and long ({long} tokens)" if long else ""
    parts = [
        f"Tiny GGUF model on llama-cpp-python's server (one thread); streamed answers, short (the "
        f"model stops after a sentence, about 5 tokens){answers}; the gateway runs the default "
        f"detectors and reroutes the prompt (it holds an AWS key id)."
    ]
    if "relay" in setups:
        parts.append(
            "`relay` is a bare TCP byte relay in its own process (bench/peers/tcp_relay.py: no "
            "parsing, no scanning), the floor: what one more process in the path costs here."
        )
    if "litellm" in setups:
        parts.append(
            f"`litellm` is the LiteLLM proxy {stack.litellm_version()} (OpenAI-compatible gateway, "
            f"no DLP scanning, one worker, offline) forwarding model `tiny` to the same server."
        )
    parts += [f"{why.splitlines()[0]}: no {name} rows." for name, why in skipped.items()]
    measured = [s for s in setups if s != "direct"]
    parts.append(
        "Each **added / loss** row compares the row above it with direct; the CPU column is that "
        f"process's ({', '.join(measured)}, with its children) per stream."
    )
    return " ".join(parts)


def run(args: argparse.Namespace) -> Section:
    levels = _levels(args)
    peers = [p.strip() for p in args.gateway_peers.split(",") if p.strip()]
    if unknown := set(peers) - set(PEERS):
        raise SystemExit(f"--gateway-peers: unknown {sorted(unknown)}; expected {PEERS}")
    unpin()
    load_start = os.getloadavg()
    began = time.perf_counter()
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="dlpproxy-bench-gw-") as tmp:
        try:
            with started(Path(tmp), peers, args.gateway_start_timeout, skipped) as targets:
                setups = list(targets)
                found, mismatched = asyncio.run(measure(targets, levels, args.gateway_long_tokens))
        except (RuntimeError, OSError, ImportError) as exc:
            text = f"## Gateway overhead\n\nn/a ({exc})\n"
            return Section("gateway", text, {"error": str(exc)})
    seconds = round(time.perf_counter() - began, 1)
    load_end = os.getloadavg()
    note = (
        f"{_note(args, setups, skipped)} Client, setups and model share the machine: load "
        f"average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end; {seconds} s "
        f"in all. Compare medians and ratios."
    )
    data: dict[str, Any] = {"levels": [asdict(lv) for lv in found], "mismatched": mismatched,
                            "setups": setups, "skipped": skipped, "seconds": seconds,
                            "load_average": [load_start, load_end]}  # fmt: skip
    if "litellm" in setups:
        data["litellm_version"] = stack.litellm_version()
    return Section("gateway", render(found, mismatched, note), data)


def main(argv: Sequence[str] | None = None) -> int:
    """Run alone through run_all: the table on stdout, bench/results/gateway.json and .md."""
    from bench.run_all import main as run_all_main

    args_in = list(sys.argv[1:] if argv is None else argv)
    return run_all_main(["--only", "gateway", "--name", "gateway", *args_in])


if __name__ == "__main__":
    raise SystemExit(main())
