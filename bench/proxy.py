"""Proxy overhead: latency and throughput through dlpproxy beside plain mitmproxy and direct.

    .venv/bin/python bench/proxy.py [--proxy-clients 1,10,50] [--proxy-requests 400,2000,2000]
        [--proxy-memory-requests 10000] [--proxy-quick]

One loopback HTTPS upstream (its own process) answers Chat Completions by echoing the prompt.
Plain mitmdump (only a host mapping, bench/plain_resolve.py) and `dlpproxy run` start with the
same mitmproxy options. For each number of concurrent clients, the same 2 KB prompts (80 % clean,
10 % with an e-mail address that dlpproxy redacts and restores, 10 % with an AWS key id that it
blocks) go straight to the upstream, through mitmproxy and through dlpproxy, one setup after the
other. Last, dlpproxy's resident memory is read before, during and after 10,000 more requests.
Client, proxy and upstream share the machine's cores: the figures are indicative, compare the
medians and ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.proxy_stack import ProxyStartError, Setup, Stack, cpu_seconds, rss_mb
from bench.report import Section, table
from bench.speed import p50_p99

SETUPS = ("direct", "mitmproxy", "dlpproxy")
INCIDENT_HEADER = "x-dlpproxy-incident"
PROMPT_BYTES = 2048
CLEAN = (
    "How do I paginate a REST API response so that clients can resume after a failure?",
    "Summarise the trade-offs between optimistic and pessimistic locking in a database.",
    "Suggest three names for a weekly newsletter about gardening on small balconies.",
    "Explain the difference between a process and a thread to someone new to programming.",
    "Rewrite this paragraph so that it sounds friendlier while keeping every fact in place.",
    "What are good questions to ask at the end of a job interview for an analyst role?",
    "List the steps to brew pour-over coffee and explain why the bloom matters.",
    "Compare electric and gas ovens for baking bread at home, in a few sentences.",
    "Draft an agenda for a one-hour planning workshop with a small product team.",
    "Why does a binary search need a sorted list, and what goes wrong if it is not sorted?",
    "Give me a gentle warm-up routine before a long run on a cold morning.",
    "What makes a good commit message, and how long should its first line be?",
)
USERS = ("mina.seo", "lucas.moreau", "aisha.rahman", "tomas.novak", "yuki.tanaka")
DOMAINS = ("example-corp.com", "mail.example.org", "example-partner.net")
KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
KINDS = ("clean", "email", "key")
ROUNDS = 4
COMPARISON_HEADERS = (
    "clients", "dlpproxy - mitmproxy p50 / p99 ms", "dlpproxy / mitmproxy p50 / p99",
    "dlpproxy / mitmproxy req/s", "dlpproxy - direct p50 / p99 ms",
    "mitmproxy - direct p50 / p99 ms", "mitmproxy / direct req/s",
    "dlpproxy - mitmproxy CPU ms/request",
)  # fmt: skip
LATENCY_HEADERS = (
    "clients", "setup", "requests", "errors", "wrong answers", "p50 ms", "p99 ms", "req/s",
    "proxy CPU ms/request",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Job:
    """One prompt to send: `kind` is clean, email (redacted by dlpproxy) or key (blocked)."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Run:
    """Client-side figures of one setup at one number of clients."""

    setup: str
    clients: int
    requests: int
    errors: int
    wrong: int
    p50: float
    p99: float
    rps: float
    p50_by_kind: dict[str, float]
    cpu_ms: float | None = None  # the proxy process's CPU time per request (None: direct)


def make_jobs(count: int, start: int, seed: int = 3) -> list[Job]:
    """`count` different prompts of about 2 KB, numbered from `start` so that no two prompts of a
    run are equal (dlpproxy remembers segments it has scanned): 8 clean, 1 e-mail, 1 key in 10."""
    rng = random.Random(f"proxy:{seed}:{start}")
    jobs = []
    for number in range(start, start + count):
        kind = {0: "email", 5: "key"}.get(number % 10, "clean")
        lines = [f"Question {number}:"]
        if kind == "email":
            address = f"{rng.choice(USERS)}@{rng.choice(DOMAINS)}"
            lines.append(f"Please draft a short thank-you note to {address} for the workshop.")
        elif kind == "key":
            key = "AKIA" + "".join(rng.choices(KEY_ALPHABET, k=16))
            lines.append(f"Why does boto reject my config with aws_access_key_id = {key} ?")
        while True:
            line = rng.choice(CLEAN)
            if len(" ".join([*lines, line]).encode()) > PROMPT_BYTES:
                break
            lines.insert(rng.randrange(1, len(lines) + 1), line)
        jobs.append(Job(kind, " ".join(lines)))
    return jobs


def expected(setup: Setup, job: Job) -> str:
    """dlpproxy answers a key-bearing prompt itself; everything else comes back echoed."""
    return "blocked" if setup.name == "dlpproxy" and job.kind == "key" else "echo"


def outcome(answer: httpx.Response, job: Job) -> str:
    if answer.status_code != 200:
        return "error"
    if INCIDENT_HEADER in answer.headers:
        return "blocked"
    try:
        content = answer.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "other"
    return "echo" if content == "You said: " + job.text else "other"


async def _send(client: httpx.AsyncClient, setup: Setup, job: Job) -> tuple[float, str]:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": job.text}]}
    began = time.perf_counter()
    try:
        answer = await client.post(setup.url, json=body, headers={"authorization": "Bearer sk-x"})
    except httpx.HTTPError:
        return (time.perf_counter() - began) * 1000.0, "error"
    return (time.perf_counter() - began) * 1000.0, outcome(answer, job)


async def _drive(
    client: httpx.AsyncClient, setup: Setup, jobs: Sequence[Job], clients: int
) -> list[tuple[float, str]]:
    """Send every job with `clients` concurrent senders; (ms, outcome) per job, in job order."""
    results: list[tuple[float, str]] = [(0.0, "error")] * len(jobs)
    order = iter(range(len(jobs)))

    async def sender() -> None:
        for index in order:
            results[index] = await _send(client, setup, jobs[index])

    await asyncio.gather(*(sender() for _ in range(clients)))
    return results


def _client(setup: Setup, clients: int) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=600.0
    )
    return httpx.AsyncClient(proxy=setup.proxy, verify=setup.verify, limits=limits, timeout=60.0)


def summarise(
    setup: Setup, clients: int, jobs: Sequence[Job], results: Sequence[tuple[float, str]],
    wall: float,
) -> Run:  # fmt: skip
    """Latency over the answered requests; errors (no answer or not 200) and wrong answers (an
    answer other than the expected echo or block) counted apart."""
    pairs = list(zip(jobs, results, strict=True))
    answered = [(job.kind, ms) for job, (ms, got) in pairs if got != "error"]
    wrong = sum(1 for job, (_, got) in pairs if got not in ("error", expected(setup, job)))
    latencies = [ms for _, ms in answered]
    p50, p99 = p50_p99(latencies) if len(latencies) > 1 else (float("nan"), float("nan"))
    by_kind = {
        kind: round(statistics.median(ms for k, ms in answered if k == kind), 2)
        for kind in sorted({k for k, _ in answered})
    }
    return Run(
        setup.name, clients, len(jobs), len(jobs) - len(answered), wrong, round(p50, 2),
        round(p99, 2), round(len(jobs) / wall, 1), by_kind,
    )  # fmt: skip


async def measure_step(
    setups: dict[str, Setup], jobs: Sequence[Job], warmup: Sequence[Job], clients: int,
    rounds: int = ROUNDS,
) -> list[Run]:  # fmt: skip
    """Every setup at one number of clients: each warms up its own keep-alive connections, then
    the jobs go in `rounds` slices taking turns between the setups, so that a change in the
    machine's background load falls on every setup alike."""
    cut = [len(jobs) * k // rounds for k in range(rounds + 1)]
    results: dict[str, list[tuple[float, str]]] = {name: [] for name in SETUPS}
    wall, busy = dict.fromkeys(SETUPS, 0.0), dict.fromkeys(SETUPS, 0.0)
    async with contextlib.AsyncExitStack() as stack:
        pool = {n: await stack.enter_async_context(_client(setups[n], clients)) for n in SETUPS}
        for name in SETUPS:
            await _drive(pool[name], setups[name], warmup, clients)
        for start, end in itertools.pairwise(cut):
            for name in SETUPS:
                pid = setups[name].pid
                began, cpu = time.perf_counter(), cpu_seconds(pid) if pid else 0.0
                results[name] += await _drive(pool[name], setups[name], jobs[start:end], clients)
                wall[name] += time.perf_counter() - began
                busy[name] += cpu_seconds(pid) - cpu if pid else 0.0
    return [
        replace(
            summarise(setups[n], clients, jobs, results[n], wall[n]),
            cpu_ms=round(busy[n] * 1000.0 / len(jobs), 2) if setups[n].pid else None,
        )
        for n in SETUPS
    ]


async def memory(setup: Setup, total: int, clients: int, start: int) -> dict[str, Any]:
    """dlpproxy's RSS before `total` new requests and after each fifth of them."""
    assert setup.pid is not None
    chunk = max(1, total // 5)
    samples = [(0, rss_mb(setup.pid))]
    errors = wrong = 0
    async with _client(setup, clients) as client:
        for done in range(0, total, chunk):
            jobs = make_jobs(min(chunk, total - done), start + done)
            results = await _drive(client, setup, jobs, clients)
            errors += sum(1 for _, got in results if got == "error")
            wrong += sum(
                1
                for j, (_, g) in zip(jobs, results, strict=True)
                if g not in ("error", expected(setup, j))
            )
            samples.append((done + len(jobs), rss_mb(setup.pid)))
    return {"clients": clients, "requests": total, "errors": errors, "wrong": wrong,
            "rss_mb": samples}  # fmt: skip


async def measure_all(
    setups: dict[str, Setup], plan: Sequence[tuple[int, int]], memory_requests: int,
    memory_clients: int,
) -> dict[str, Any]:  # fmt: skip
    """Every setup at every number of clients on the same prompts, then dlpproxy's memory."""
    rss = {name: {"ready": rss_mb(s.pid)} for name, s in setups.items() if s.pid}
    runs: list[Run] = []
    number = 0
    for clients, count in plan:
        warmup = make_jobs(max(20, 2 * clients), number)
        jobs = make_jobs(count, number + len(warmup))
        number += len(warmup) + count
        for run in await measure_step(setups, jobs, warmup, clients):
            print(progress(run), flush=True)
            runs.append(run)
    for name, setup in setups.items():
        if setup.pid:
            rss[name]["after_latency_runs"] = rss_mb(setup.pid)
    grown: dict[str, Any] = {}
    if memory_requests:
        grown = await memory(setups["dlpproxy"], memory_requests, memory_clients, number)
    return {"runs": [asdict(r) for r in runs], "rss_mb": rss, "memory": grown}


def progress(run: Run) -> str:
    return (
        f"  {run.clients:>3} clients {run.setup:<9} p50 {run.p50:7.1f} ms p99 {run.p99:7.1f} ms"
        f" {run.rps:6.0f} req/s cpu {run.cpu_ms} ms/req errors {run.errors} wrong {run.wrong}"
    )


def _pair(a: float, b: float, fmt: str) -> str:
    return f"{a:{fmt}} / {b:{fmt}}"


def comparison_rows(runs: Sequence[Run]) -> list[list[object]]:
    """Per number of clients: dlpproxy against plain mitmproxy and direct, mitmproxy against
    direct (differences of medians and p99s in ms, ratios of them and of requests/s)."""
    by = {(r.clients, r.setup): r for r in runs}
    rows: list[list[object]] = []
    for clients in sorted({r.clients for r in runs}):
        d, m, p = (by[(clients, name)] for name in ("dlpproxy", "mitmproxy", "direct"))
        rows.append([
            clients,
            _pair(d.p50 - m.p50, d.p99 - m.p99, "+.1f"),
            _pair(d.p50 / m.p50, d.p99 / m.p99, ".2f"),
            f"{d.rps / m.rps:.2f}",
            _pair(d.p50 - p.p50, d.p99 - p.p99, "+.1f"),
            _pair(m.p50 - p.p50, m.p99 - p.p99, "+.1f"),
            f"{m.rps / p.rps:.2f}",
            "-" if d.cpu_ms is None or m.cpu_ms is None else f"{d.cpu_ms - m.cpu_ms:+.2f}",
        ])  # fmt: skip
    return rows


def verdict(runs: Sequence[Run], grown: dict[str, Any], limit_ms: float = 20.0) -> list[str]:
    """The issue's targets, each with the figure it was judged on."""
    most = max(r.clients for r in runs)
    by = {(r.clients, r.setup): r for r in runs}
    added = by[(most, "dlpproxy")].p99 - by[(most, "mitmproxy")].p99
    lines = [
        f"- added p99 over plain mitmproxy at {most} clients: {added:+.1f} ms"
        f" ({'met' if added <= limit_ms else 'NOT met'}: target <= {limit_ms:.0f} ms)"
    ]
    failures = (
        sum(r.errors + r.wrong for r in runs) + grown.get("errors", 0) + grown.get("wrong", 0)
    )
    lines.append(f"- errors and wrong answers, all setups and phases: {failures}")
    samples = grown.get("rss_mb", [])
    if len(samples) > 2:
        (n1, first), (n2, last) = samples[1], samples[-1]
        growth = last - first
        flat = growth <= 0.05 * first
        lines.append(
            f"- dlpproxy RSS {first:.0f} MB after {n1} requests, {last:.0f} MB after {n2}:"
            f" {growth:+.1f} MB ({'flat' if flat else 'growing'}: flat means <= 5 % growth"
            " after the first fifth, which fills the allocator and the bounded scan cache)"
        )
    return lines


def kind_rows(runs: Sequence[Run]) -> list[list[object]]:
    """Median per prompt kind and number of clients, dlpproxy beside plain mitmproxy."""
    by = {(r.clients, r.setup): r for r in runs}
    rows: list[list[object]] = []
    for clients in sorted({r.clients for r in runs}):
        d, m = by[(clients, "dlpproxy")], by[(clients, "mitmproxy")]
        nan = float("nan")
        rows.append(
            [clients]
            + [f"{d.p50_by_kind.get(k, nan):.1f} ({m.p50_by_kind.get(k, nan):.1f})" for k in KINDS]
        )
    return rows


def memory_rows(rss: dict[str, dict[str, float]], grown: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name in ("dlpproxy", "mitmproxy"):
        rows.append([name, "ready", rss[name]["ready"]])
        rows.append([name, "after the latency runs", rss[name]["after_latency_runs"]])
        if name == "dlpproxy":
            for done, mb in grown.get("rss_mb", [])[1:]:
                rows.append([name, f"then +{done} requests ({grown['clients']} clients)", mb])
    return rows


def render(data: dict[str, Any], note: str) -> str:
    """The section's markdown: latency per setup, the comparison, per kind, memory, targets."""
    runs = [Run(**r) for r in data["runs"]]
    latency = [
        [r.clients, r.setup, r.requests, r.errors, r.wrong, f"{r.p50:.1f}", f"{r.p99:.1f}",
         f"{r.rps:.0f}", "-" if r.cpu_ms is None else f"{r.cpu_ms:.2f}"]
        for r in runs
    ]  # fmt: skip
    parts = [
        "## Proxy overhead (2 KB Chat Completions prompts, loopback upstream)",
        note,
        "Client-side latency per request and requests per second:",
        table(LATENCY_HEADERS, latency),
        "dlpproxy beside plain mitmproxy (same options, no inspection) and direct requests:",
        table(COMPARISON_HEADERS, comparison_rows(runs)),
        "Median (ms) by prompt kind, dlpproxy (plain mitmproxy): e-mail prompts are redacted and"
        " restored, key prompts are answered by dlpproxy without reaching the upstream:",
        table(["clients", *KINDS], kind_rows(runs)),
        "Resident memory (VmRSS) of the proxy processes:",
        table(["process", "when", "RSS MB"], memory_rows(data["rss_mb"], data["memory"])),
        "Targets:",
        "\n".join(verdict(runs, data["memory"])),
    ]
    return "\n\n".join(parts) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proxy-clients", default="1,10,50", help="concurrent clients per step")
    parser.add_argument(
        "--proxy-requests", default="400,2000,2000", help="timed requests per step (one or each)"
    )
    parser.add_argument(
        "--proxy-memory-requests", type=int, default=10_000, help="requests of the memory phase"
    )
    parser.add_argument("--proxy-memory-clients", type=int, default=10)
    parser.add_argument("--proxy-start-timeout", type=float, default=180.0, help="seconds")
    parser.add_argument("--proxy-quick", action="store_true", help="small run for a smoke test")


def plan_of(args: argparse.Namespace) -> tuple[list[tuple[int, int]], int]:
    """[(clients, requests)] and the memory phase's request count, from the options."""
    if args.proxy_quick:
        return [(1, 40), (10, 200)], 500
    clients = [int(x) for x in args.proxy_clients.split(",") if x.strip()]
    counts = [int(x) for x in args.proxy_requests.split(",") if x.strip()]
    if len(counts) == 1:
        counts *= len(clients)
    if len(counts) != len(clients) or not clients:
        raise SystemExit(
            f"--proxy-requests: {len(counts)} counts for {len(clients)} client steps; give one"
            " count or one per step"
        )
    return list(zip(clients, counts, strict=True)), args.proxy_memory_requests


def unpin() -> None:
    """Undo a one-core pin (speed.py's) so that client, upstream and proxy use every core."""
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, range(os.cpu_count() or 1))


def run(args: argparse.Namespace) -> Section:
    plan, memory_requests = plan_of(args)
    unpin()
    load_start = os.getloadavg()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlpproxy-bench-") as tmp:
        stack = Stack(Path(tmp))
        try:
            setups = stack.start(args.proxy_start_timeout)
            data = asyncio.run(
                measure_all(setups, plan, memory_requests, args.proxy_memory_clients)
            )
        except ProxyStartError as exc:
            text = f"## Proxy overhead\n\nn/a ({exc})\n"
            return Section("proxy", text, {"error": str(exc)})
        finally:
            stack.stop()
    load_end = os.getloadavg()
    data["seconds"] = round(time.perf_counter() - began, 1)
    data["load_average"] = {"start": load_start, "end": load_end}
    cores = os.cpu_count()
    steps = ", ".join(f"{n} at {c} clients" for c, n in plan)
    note = (
        f"{cores} cores shared by the client (httpx in one asyncio process), the upstream (a"
        " threaded Python HTTPS server, its own process) and the proxy under test; load average"
        f" {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end. Indicative figures:"
        f" compare medians and ratios within one run. Timed requests per setup: {steps}, after"
        f" a warm-up on the same keep-alive connections, in {ROUNDS} slices taking turns between"
        " the setups; prompts of at most 2048 bytes, 8 clean,"
        f" 1 with an e-mail, 1 with an AWS key id in 10. Whole run {data['seconds']:.0f} s."
    )
    return Section("proxy", render(data, note), data)


def main(argv: Sequence[str] | None = None) -> int:
    """Run alone through run_all: the tables on stdout, bench/results/proxy.json and proxy.md."""
    from bench.run_all import main as run_all_main

    args_in = list(sys.argv[1:] if argv is None else argv)
    return run_all_main(["--only", "proxy", "--name", "proxy", *args_in])


if __name__ == "__main__":
    raise SystemExit(main())
