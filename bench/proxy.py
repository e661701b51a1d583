"""Proxy overhead: latency and throughput through dlpproxy beside plain mitmproxy and direct.

    .venv/bin/python bench/proxy.py [--proxy-clients 1,10,50] [--proxy-requests 400,2000,2000]
        [--proxy-paced-clients 50 --proxy-paced-rate 50 --proxy-paced-requests 1000]
        [--proxy-memory-requests 10000 --proxy-memory-clients 10] [--proxy-quick]

One loopback HTTPS upstream (its own process) answers Chat Completions by echoing the prompt.
Plain mitmdump (only a host mapping, bench/plain_resolve.py) and `dlpproxy run` start with the
same mitmproxy options. At each step the same 2 KB prompts (8 in 10 clean, 1 with an e-mail
address that dlpproxy redacts and restores, 1 with an AWS key id that it blocks) go straight to
the upstream, through mitmproxy and through dlpproxy, the setups taking turns. Steps: N clients
sending back to back (closed loop), then N clients started on a fixed schedule (paced). Last,
each proxy's resident memory before and during 10,000 more requests. Client, proxy and upstream
share the machine's cores: the figures are indicative, compare medians and ratios of one run.
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

from bench.proxy_report import ROUNDS, Run, Step, describe, progress, render
from bench.proxy_stack import ProxyStartError, Setup, Stack, cpu_seconds, rss_mb
from bench.report import Section
from bench.speed import p50_p99

SETUPS = ("direct", "mitmproxy", "dlpproxy", "dlpproxy-all")
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


@dataclass(frozen=True, slots=True)
class Job:
    """One prompt to send: `kind` is clean, email (redacted by dlpproxy) or key (blocked)."""

    kind: str
    text: str


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
    return "blocked" if setup.name.startswith("dlpproxy") and job.kind == "key" else "echo"


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


async def _send(
    client: httpx.AsyncClient, setup: Setup, job: Job, due: float | None
) -> tuple[float, str]:
    """(ms, outcome) of one request, timed from `due` when it had a scheduled start (so that a
    request that waited for a free client counts its wait) or else from its own start."""
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": job.text}]}
    began = time.perf_counter() if due is None else due
    try:
        answer = await client.post(setup.url, json=body, headers={"authorization": "Bearer sk-x"})
    except httpx.HTTPError:
        return (time.perf_counter() - began) * 1000.0, "error"
    return (time.perf_counter() - began) * 1000.0, outcome(answer, job)


async def _drive(
    pool: Sequence[httpx.AsyncClient], setup: Setup, jobs: Sequence[Job], rate: float = 0.0
) -> list[tuple[float, str]]:
    """Send every job, one sender per client of `pool`, job i due at i/rate seconds when paced;
    (ms, outcome) per job, in job order."""
    results: list[tuple[float, str]] = [(0.0, "error")] * len(jobs)
    order = iter(range(len(jobs)))
    began = time.perf_counter()

    async def sender(client: httpx.AsyncClient) -> None:
        for index in order:
            due = began + index / rate if rate else None
            if due is not None:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            results[index] = await _send(client, setup, jobs[index], due)

    await asyncio.gather(*(sender(client) for client in pool))
    return results


async def open_clients(
    stack: contextlib.AsyncExitStack, setup: Setup, count: int
) -> list[httpx.AsyncClient]:
    """`count` clients of one keep-alive connection each, closed with `stack`. One shared
    httpx pool serving 50 concurrent requests spends its time in the pool's bookkeeping
    (about 200 req/s and 1 s at p99 against the bare upstream here, where 50 clients manage
    1,400 req/s), which would measure httpx instead of the proxies."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=600.0)
    return [
        await stack.enter_async_context(
            httpx.AsyncClient(proxy=setup.proxy, verify=setup.verify, limits=limits, timeout=60.0)
        )
        for _ in range(count)
    ]


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
    setups: dict[str, Setup], jobs: Sequence[Job], warmup: Sequence[Job], step: Step,
    rounds: int = ROUNDS,
) -> list[Run]:  # fmt: skip
    """Every setup at one step: each warms up its own keep-alive connections, then the jobs go
    in `rounds` slices taking turns between the setups, so that a change in the machine's
    background load falls on every setup alike."""
    clients = step.clients
    cut = [len(jobs) * k // rounds for k in range(rounds + 1)]
    results: dict[str, list[tuple[float, str]]] = {name: [] for name in SETUPS}
    wall, busy = dict.fromkeys(SETUPS, 0.0), dict.fromkeys(SETUPS, 0.0)
    async with contextlib.AsyncExitStack() as stack:
        pool = {n: await open_clients(stack, setups[n], clients) for n in SETUPS}
        for name in SETUPS:
            await _drive(pool[name], setups[name], warmup)
        for start, end in itertools.pairwise(cut):
            for name in SETUPS:
                pid = setups[name].pid
                began, cpu = time.perf_counter(), cpu_seconds(pid) if pid else 0.0
                part = jobs[start:end]
                results[name] += await _drive(pool[name], setups[name], part, step.rate)
                wall[name] += time.perf_counter() - began
                busy[name] += cpu_seconds(pid) - cpu if pid else 0.0
    return [
        replace(
            summarise(setups[n], clients, jobs, results[n], wall[n]),
            cpu_ms=round(busy[n] * 1000.0 / len(jobs), 2) if setups[n].pid else None,
            rate=step.rate,
        )
        for n in SETUPS
    ]


async def memory(setup: Setup, total: int, clients: int, start: int) -> dict[str, Any]:
    """A proxy's RSS before `total` new requests and after each fifth of them."""
    assert setup.pid is not None
    chunk = max(1, total // 5)
    samples = [(0, rss_mb(setup.pid))]
    errors = wrong = 0
    async with contextlib.AsyncExitStack() as stack:
        pool = await open_clients(stack, setup, clients)
        for done in range(0, total, chunk):
            jobs = make_jobs(min(chunk, total - done), start + done)
            results = await _drive(pool, setup, jobs)
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
    setups: dict[str, Setup], plan: Sequence[Step], memory_requests: int,
    memory_clients: int,
) -> dict[str, Any]:  # fmt: skip
    """Every setup at every step on the same prompts, then each proxy's memory."""
    rss = {name: {"ready": rss_mb(s.pid)} for name, s in setups.items() if s.pid}
    runs: list[Run] = []
    number = 0
    for step in plan:
        warmup = make_jobs(max(20, 2 * step.clients), number)
        jobs = make_jobs(step.requests, number + len(warmup))
        number += len(warmup) + step.requests
        for run in await measure_step(setups, jobs, warmup, step):
            print(progress(run), flush=True)
            runs.append(run)
    for name, setup in setups.items():
        if setup.pid:
            rss[name]["after_latency_runs"] = rss_mb(setup.pid)
    grown: dict[str, Any] = {}
    if memory_requests:
        for name in ("mitmproxy", "dlpproxy"):
            grown[name] = await memory(setups[name], memory_requests, memory_clients, number)
    return {"runs": [asdict(r) for r in runs], "rss_mb": rss, "memory": grown}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proxy-clients", default="1,10,50", help="concurrent clients per step")
    parser.add_argument(
        "--proxy-requests", default="400,2000,2000", help="timed requests per step (one or each)"
    )
    parser.add_argument(
        "--proxy-memory-requests", type=int, default=10_000, help="requests of the memory phase"
    )
    parser.add_argument("--proxy-memory-clients", type=int, default=10)
    parser.add_argument(
        "--proxy-paced-rate", type=float, default=50.0,
        help="a last step whose clients start requests at this many per second (0: none)",
    )  # fmt: skip
    parser.add_argument("--proxy-paced-clients", type=int, default=50)
    parser.add_argument("--proxy-paced-requests", type=int, default=1000)
    parser.add_argument("--proxy-start-timeout", type=float, default=180.0, help="seconds")
    parser.add_argument("--proxy-quick", action="store_true", help="small run for a smoke test")


def plan_of(args: argparse.Namespace) -> tuple[list[Step], int]:
    """The steps and the memory phase's request count, from the options."""
    if args.proxy_quick:
        return [Step(1, 40), Step(10, 200), Step(10, 100, 20.0)], 500
    clients = [int(x) for x in args.proxy_clients.split(",") if x.strip()]
    counts = [int(x) for x in args.proxy_requests.split(",") if x.strip()]
    if len(counts) == 1:
        counts *= len(clients)
    if len(counts) != len(clients) or not clients:
        raise SystemExit(
            f"--proxy-requests: {len(counts)} counts for {len(clients)} client steps; give one"
            " count or one per step"
        )
    plan = [Step(n, count) for n, count in zip(clients, counts, strict=True)]
    if args.proxy_paced_rate > 0:
        plan.append(
            Step(args.proxy_paced_clients, args.proxy_paced_requests, args.proxy_paced_rate)
        )
    return plan, args.proxy_memory_requests


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
    note = describe(plan, load_start[0], load_end[0], data["seconds"])
    return Section("proxy", render(data, note), data)


def main(argv: Sequence[str] | None = None) -> int:
    """Run alone through run_all: the tables on stdout, bench/results/proxy.json and proxy.md."""
    from bench.run_all import main as run_all_main

    args_in = list(sys.argv[1:] if argv is None else argv)
    return run_all_main(["--only", "proxy", "--name", "proxy", *args_in])


if __name__ == "__main__":
    raise SystemExit(main())
