"""Figures of the proxy benchmark (bench/proxy.py) and their markdown: latency per setup and
step, dlpproxy against plain mitmproxy and direct, medians per prompt kind, memory, targets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.report import table

ROUNDS = 4

KINDS = ("clean", "email", "key")
COMPARISON_HEADERS = (
    "clients", "dlpproxy - mitmproxy p50 / p99 ms", "dlpproxy / mitmproxy p50 / p99",
    "dlpproxy / mitmproxy req/s", "dlpproxy - direct p50 / p99 ms",
    "mitmproxy - direct p50 / p99 ms", "mitmproxy / direct req/s",
    "dlpproxy - mitmproxy CPU ms/request", "dlpproxy-all - mitmproxy p50 / p99 ms",
    "dlpproxy-all - mitmproxy CPU ms/request",
)  # fmt: skip
LATENCY_HEADERS = (
    "clients", "setup", "requests", "errors", "wrong answers", "p50 ms", "p99 ms", "req/s",
    "proxy CPU ms/request",
)  # fmt: skip


def step_label(clients: int, rate: float) -> str:
    return f"{clients} @ {rate:g} req/s" if rate else str(clients)


def step_phrase(clients: int, rate: float) -> str:
    return f"{clients} clients paced at {rate:g} req/s" if rate else f"{clients} clients"


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
    rate: float = 0.0  # requests/s the clients were paced at; 0: each sends again at once

    @property
    def step(self) -> str:
        return step_label(self.clients, self.rate)


@dataclass(frozen=True, slots=True)
class Step:
    """`requests` timed requests from `clients` concurrent clients, as fast as they can
    (closed loop) or, with a `rate`, started on a fixed schedule of that many per second."""

    clients: int
    requests: int
    rate: float = 0.0


def progress(run: Run) -> str:
    return (
        f"  {run.step:>14} clients {run.setup:<9} p50 {run.p50:7.1f} ms p99 {run.p99:7.1f} ms"
        f" {run.rps:6.0f} req/s cpu {run.cpu_ms} ms/req errors {run.errors} wrong {run.wrong}"
    )


def _pair(a: float, b: float, fmt: str) -> str:
    return f"{a:{fmt}} / {b:{fmt}}"


def by_step(runs: Sequence[Run]) -> dict[str, dict[str, Run]]:
    """step label -> setup -> its run, steps in the order they ran."""
    steps: dict[str, dict[str, Run]] = {}
    for run in runs:
        steps.setdefault(run.step, {})[run.setup] = run
    return steps


def comparison_rows(runs: Sequence[Run]) -> list[list[object]]:
    """Per step: dlpproxy against plain mitmproxy and direct, mitmproxy against direct
    (differences of medians and p99s in ms, ratios of them and of requests/s, CPU added)."""
    rows: list[list[object]] = []
    for step, setups in by_step(runs).items():
        d, m, p = (setups[name] for name in ("dlpproxy", "mitmproxy", "direct"))
        rows.append([
            step,
            _pair(d.p50 - m.p50, d.p99 - m.p99, "+.1f"),
            _pair(d.p50 / m.p50, d.p99 / m.p99, ".2f"),
            f"{d.rps / m.rps:.2f}",
            _pair(d.p50 - p.p50, d.p99 - p.p99, "+.1f"),
            _pair(m.p50 - p.p50, m.p99 - p.p99, "+.1f"),
            f"{m.rps / p.rps:.2f}",
            _cpu_added(d, m),
            *_beside(setups.get("dlpproxy-all"), m),
        ])  # fmt: skip
    return rows


def _cpu_added(a: Run, m: Run) -> str:
    return "-" if a.cpu_ms is None or m.cpu_ms is None else f"{a.cpu_ms - m.cpu_ms:+.2f}"


def _beside(a: Run | None, m: Run) -> list[str]:
    """dlpproxy with mitmdump's whole addon set against plain mitmproxy ("-" when not run)."""
    if a is None:
        return ["-", "-"]
    return [_pair(a.p50 - m.p50, a.p99 - m.p99, "+.1f"), _cpu_added(a, m)]


def verdict(
    runs: Sequence[Run], grown: dict[str, Any], limit_ms: float = 20.0, flat_mb: float = 0.1
) -> list[str]:
    """The issue's targets, each with the figure it was judged on."""
    most = max(r.clients for r in runs if not r.rate)
    lines = []
    for setups in by_step(runs).values():
        d = setups["dlpproxy"]
        if d.rate or d.clients == most:
            added = d.p99 - setups["mitmproxy"].p99
            lines.append(
                f"- added p99 over plain mitmproxy at {step_phrase(d.clients, d.rate)}:"
                f" {added:+.1f} ms"
                f" ({'met' if added <= limit_ms else 'NOT met'}: target <= {limit_ms:.0f} ms)"
            )
            if (full := setups.get("dlpproxy-all")) is not None:
                lines.append(
                    f"  (with mitmdump's whole addon set, `--mitmproxy-addons all`:"
                    f" {full.p99 - setups['mitmproxy'].p99:+.1f} ms)"
                )
    failures = sum(r.errors + r.wrong for r in runs) + sum(
        phase["errors"] + phase["wrong"] for phase in grown.values()
    )
    lines.append(f"- errors and wrong answers, all setups and phases: {failures}")
    samples = grown.get("dlpproxy", {}).get("rss_mb", [])
    if len(samples) > 2:
        (n1, first), (n2, last) = samples[1], samples[-1]
        growth = last - first
        per_thousand = growth * 1000 / (n2 - n1)
        plain = grown.get("mitmproxy", {}).get("rss_mb", [])
        beside = f"; plain mitmproxy {plain[-1][1] - plain[1][1]:+.1f} MB" if len(plain) > 2 else ""
        lines.append(
            f"- dlpproxy RSS {first:.0f} MB after {n1} requests, {last:.0f} MB after {n2}:"
            f" {growth:+.1f} MB, {per_thousand:.2f} MB per 1,000 requests{beside}"
            f" ({'flat' if per_thousand <= flat_mb else 'growing'}: flat means at most"
            f" {flat_mb} MB per 1,000 requests after the first fifth, which fills the allocator)"
        )
    return lines


def kind_rows(runs: Sequence[Run]) -> list[list[object]]:
    """Median per prompt kind and step, dlpproxy beside plain mitmproxy."""
    rows: list[list[object]] = []
    nan = float("nan")
    for step, setups in by_step(runs).items():
        d, m = setups["dlpproxy"], setups["mitmproxy"]
        medians = [
            f"{d.p50_by_kind.get(k, nan):.1f} ({m.p50_by_kind.get(k, nan):.1f})" for k in KINDS
        ]
        rows.append([step, *medians])
    return rows


def memory_rows(rss: dict[str, dict[str, float]], grown: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name in ("dlpproxy", "mitmproxy"):
        rows.append([name, "ready", rss[name]["ready"]])
        rows.append([name, "after the latency runs", rss[name]["after_latency_runs"]])
        phase = grown.get(name, {})
        for done, mb in phase.get("rss_mb", [])[1:]:
            rows.append([name, f"then +{done} requests ({phase['clients']} clients)", mb])
    return rows


def render(data: dict[str, Any], note: str) -> str:
    """The section's markdown: latency per setup, the comparison, per kind, memory, targets."""
    runs = [Run(**r) for r in data["runs"]]
    latency = [
        [r.step, r.setup, r.requests, r.errors, r.wrong, f"{r.p50:.1f}", f"{r.p99:.1f}",
         f"{r.rps:.0f}", "-" if r.cpu_ms is None else f"{r.cpu_ms:.2f}"]
        for r in runs
    ]  # fmt: skip
    parts = [
        "## Proxy overhead (2 KB Chat Completions prompts, loopback upstream)",
        note,
        "Client-side latency per request and requests per second:",
        table(LATENCY_HEADERS, latency),
        "dlpproxy beside plain mitmproxy (mitmdump, same options, no inspection) and direct"
        " requests; dlpproxy-all is dlpproxy with mitmdump's whole addon set"
        " (`--mitmproxy-addons all`) instead of the lean set `dlpproxy run` loads:",
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


def describe(plan: Sequence[Step], load_start: float, load_end: float, seconds: float) -> str:
    """How the figures were made, for the top of the section."""
    steps = ", ".join(f"{s.requests} at {step_phrase(s.clients, s.rate)}" for s in plan)
    return (
        f"{os.cpu_count()} cores shared by the clients (one asyncio process; one httpx client"
        " with one keep-alive connection per simulated client), the upstream (an asyncio HTTPS"
        " server, its own process) and the proxy under test; load"
        f" average {load_start:.2f} at the start, {load_end:.2f} at the end. Indicative figures:"
        " compare medians and ratios within one run. A step named N has N clients that each"
        " send again as soon as their answer arrives (closed loop: once the proxy is saturated,"
        " latency is about N / throughput); a step named `N @ R req/s` starts requests on a"
        " fixed schedule of R per second, each timed from its scheduled start. Timed requests"
        f" per setup: {steps}, after a warm-up on the same keep-alive connections, in {ROUNDS}"
        " slices taking turns between the setups; prompts of at most 2048 bytes, 8 clean, 1"
        f" with an e-mail, 1 with an AWS key id in 10. Whole run {seconds:.0f} s."
    )
