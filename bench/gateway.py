"""Gateway overhead: the local model called directly versus through `dlpproxy gateway`.

    .venv/bin/python bench/gateway.py [--gateway-concurrency 1,20] [--gateway-requests 60,200]

A real llama-cpp-python server with the tiny test model (tests/support/tiny_gguf.py, made
offline) is the local model; `dlpproxy gateway` runs as its own process with the default
detectors and a policy that reroutes secrets to that server, so every request through it is
scanned, decided, translated to the local model's chat API and streamed back. The prompt holds
an AWS key id. Each request streams (`stream: true`, temperature 0); the client measures time
to first token (the first event with text) and total time. Two answer lengths: `short`, where the
model stops by itself (a sentence of about 5 tokens), and `long`, where end-of-sequence is banned
(`logit_bias`) so that it writes `--gateway-long-tokens` tokens. At each level the direct and the
gateway runs take turns in slices, so that a change in the machine's load falls on both alike.
Throughput is completed streams per second of wall time; loss = 1 - gateway / direct.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import subprocess
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

from bench.proxy import unpin
from bench.proxy_stack import cpu_seconds
from bench.report import Section, table
from bench.speed import p50_p99

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 5
KEY_ENV = "DLPPROXY_BENCH_PROVIDER_KEY"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text(errors='replace')[-2000:]}")


@contextlib.contextmanager
def local_server(folder: Path, timeout: float) -> Iterator[str]:
    """The tiny GGUF model served by llama-cpp-python's server; yields its /v1 base URL."""
    sys.path.insert(0, str(ROOT))
    from tests.support.tiny_gguf import write_tiny_gguf

    model = write_tiny_gguf(folder / "tiny.gguf")
    port, log = free_port(), folder / "llama.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
           "127.0.0.1", "--port", str(port), "--model_alias", "tiny", "--n_ctx", "2048",
           "--verbose", "False", "--n_threads", "1", "--interrupt_requests", "False"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/v1/models", proc, log, timeout)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.contextmanager
def gateway(folder: Path, local_url: str, timeout: float) -> Iterator[tuple[str, str, int]]:
    """`dlpproxy gateway` rerouting secrets to `local_url`; yields its /v1 URL, an app key and
    its process id."""
    from dlpproxy.gateway.config import new_key

    key, line = new_key("bench")
    (folder / "gateway.yaml").write_text(
        "version: 1\nproviders:\n  openai:\n"
        f"    base_url: http://127.0.0.1:{free_port()}/v1\n    api_key_env: {KEY_ENV}\n"
        f"keys:\n{line}\n"
    )
    (folder / "policy.yaml").write_text(
        "version: 1\nlocal_models:\n  company:\n"
        f"    base_url: {local_url}\n    model: tiny\n    timeout_s: 120\n"
        "reroute:\n  model: company\n  banner: ''\n"
        "rules:\n  - {id: reroute-secrets, category: secret, action: reroute}\n"
    )
    port, log = free_port(), folder / "gateway.log"
    cmd = [sys.executable, "-m", "dlpproxy", "gateway", "--listen", f"127.0.0.1:{port}",
           "--config", str(folder / "gateway.yaml"), "--policy", str(folder / "policy.yaml"),
           "--audit-db", str(folder / "audit.db")]  # fmt: skip
    env = {**os.environ, KEY_ENV: "sk-never-used"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    try:
        wait_for(f"http://127.0.0.1:{port}/v1/models", proc, log, timeout)
        yield f"http://127.0.0.1:{port}/v1", key, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


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
    pid: int | None = None  # a process whose CPU time is counted


async def measure(
    targets: dict[str, Target], levels: Sequence[tuple[str, int, int]], long_tokens: int
) -> tuple[list[Level], int]:
    """Both setups at each (answer, streams, requests) level, in alternating slices; the answers
    through the gateway are compared with the direct ones (temperature 0: the same text)."""
    out: list[Level] = []
    mismatched = 0
    for answer, streams, requests in levels:
        body = request_body(long_tokens if answer == "long" else 0)
        got: dict[str, list[tuple[float, float, str]]] = {name: [] for name in targets}
        errors, wall = dict.fromkeys(targets, 0), dict.fromkeys(targets, 0.0)
        cpu: dict[str, float] = {}
        async with contextlib.AsyncExitStack() as stack:
            pool = {
                name: [await stack.enter_async_context(httpx.AsyncClient(timeout=300))
                       for _ in range(streams)]
                for name in targets
            }  # fmt: skip
            for name, t in targets.items():  # warm-up: connections, caches
                await drive(pool[name], t.url, t.headers, streams * 2, body)
            cut = [requests * k // ROUNDS for k in range(ROUNDS + 1)]
            for start, end in itertools.pairwise(cut):
                for name, t in targets.items():
                    before = cpu_seconds(t.pid) if t.pid else 0.0
                    results, failed, seconds = await drive(
                        pool[name], t.url, t.headers, end - start, body
                    )
                    if t.pid:
                        cpu[name] = cpu.get(name, 0.0) + cpu_seconds(t.pid) - before
                    got[name] += results
                    errors[name] += failed
                    wall[name] += seconds
        direct_texts = {t for _, _, t in got["direct"]}
        mismatched += sum(1 for _, _, t in got["gateway"] if t not in direct_texts)
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


def render(levels: Sequence[Level], mismatched: int, note: str) -> str:
    rows = []
    for a, b in zip(levels[::2], levels[1::2], strict=True):
        direct, through = (a, b) if a.setup == "direct" else (b, a)
        for lv in (direct, through):
            rows.append([lv.setup, lv.answer, lv.streams, lv.requests, lv.errors, lv.ttft_p50,
                         lv.ttft_p99, lv.total_p50, lv.total_p99, lv.per_second,
                         "-" if lv.cpu_ms is None else lv.cpu_ms])  # fmt: skip
        rows.append([
            "**added / loss**", direct.answer, direct.streams, "", "",
            f"**{through.ttft_p50 - direct.ttft_p50:+.2f} ms**",
            f"{through.ttft_p99 - direct.ttft_p99:+.2f} ms",
            f"{through.total_p50 - direct.total_p50:+.2f} ms",
            f"{through.total_p99 - direct.total_p99:+.2f} ms",
            f"**{(1 - through.per_second / direct.per_second) * 100:.1f} % loss**"
            if direct.per_second else "-", "",
        ])  # fmt: skip
    head = ["setup", "answer", "streams", "requests", "errors", "TTFT p50 ms", "TTFT p99 ms",
            "total p50 ms", "total p99 ms", "streams/s", "gateway CPU ms/stream"]  # fmt: skip
    return (
        f"## Gateway overhead (local model direct vs through `dlpproxy gateway`)\n\n{note}\n\n"
        f"{table(head, rows)}\n\nAnswers through the gateway that differ from every direct "
        f"answer: {mismatched}.\n"
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


def _levels(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    streams = [int(x) for x in args.gateway_concurrency.split(",") if x.strip()]
    counts = [int(x) for x in args.gateway_requests.split(",") if x.strip()]
    if len(counts) == 1:
        counts *= len(streams)
    if len(counts) != len(streams) or not streams:
        raise SystemExit("--gateway-requests: give one count, or one per concurrency level")
    answers = ("short", "long") if args.gateway_long_tokens else ("short",)
    return [(a, n, c) for a in answers for n, c in zip(streams, counts, strict=True)]


def run(args: argparse.Namespace) -> Section:
    levels = _levels(args)
    unpin()
    load_start = os.getloadavg()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlpproxy-bench-gw-") as tmp:
        folder = Path(tmp)
        try:
            with (
                local_server(folder, args.gateway_start_timeout) as local_url,
                gateway(folder, local_url, args.gateway_start_timeout) as (gw_url, key, pid),
            ):
                targets = {
                    "direct": Target(f"{local_url}/chat/completions", {}),
                    "gateway": Target(
                        f"{gw_url}/chat/completions", {"authorization": f"Bearer {key}"}, pid
                    ),
                }
                found, mismatched = asyncio.run(measure(targets, levels, args.gateway_long_tokens))
        except (RuntimeError, OSError, ImportError) as exc:
            text = f"## Gateway overhead\n\nn/a ({exc})\n"
            return Section("gateway", text, {"error": str(exc)})
    seconds = round(time.perf_counter() - began, 1)
    load_end = os.getloadavg()
    note = (
        f"Tiny GGUF model on llama-cpp-python's server (one thread); streamed answers, short (the "
        f"model stops after a sentence, about 5 tokens) and long ({args.gateway_long_tokens} "
        f"tokens); the gateway runs the default detectors and reroutes "
        f"the prompt (it holds an AWS key id). Client, gateway and model share the machine: "
        f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end; "
        f"{seconds} s in all. Compare medians and ratios."
    )
    data: dict[str, Any] = {"levels": [asdict(lv) for lv in found], "mismatched": mismatched,
                            "seconds": seconds, "load_average": [load_start, load_end]}  # fmt: skip
    return Section("gateway", render(found, mismatched, note), data)


def main(argv: Sequence[str] | None = None) -> int:
    """Run alone through run_all: the table on stdout, bench/results/gateway.json and .md."""
    from bench.run_all import main as run_all_main

    args_in = list(sys.argv[1:] if argv is None else argv)
    return run_all_main(["--only", "gateway", "--name", "gateway", *args_in])


if __name__ == "__main__":
    raise SystemExit(main())
