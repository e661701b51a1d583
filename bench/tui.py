"""The admin TUI over a large audit store: time to first paint and to apply a filter.

    .venv/bin/python bench/tui.py [--tui-events 1000000] [--tui-runs 7]

Builds (once, cached under `.benchdata/`) an audit store of synthetic events written with the
store's own schema, then measures with textual's Pilot, headless at 80x24: first paint (app
mounted and the first page of the Live table rendered) and applying a filter on user, category,
action and service (from Enter in the filter box to the table showing the new page).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import Section, table
from dlpproxy.audit.store import open_store

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".benchdata"
USERS = [f"user{i:04d}" for i in range(2000)]
SERVICES = ["openai", "chatgpt", "anthropic", "claude", "gemini", "deepseek", "azure-openai",
            "mistral", "copilot", "perplexity"]  # fmt: skip
# (action, rule, categories with their finding types), weighted like a working day: most clean.
OUTCOMES = [
    (70, "allow", "", ()),
    (10, "redact", "redact-contact-data", (("pii", "email"), ("pii", "phone"))),
    (8, "block", "block-secrets", (("secret", "aws_access_key_id"),)),
    (4, "block", "block-national-ids", (("pii", "kr_rrn"),)),
    (5, "monitor", "monitor-confidential-words", (("confidential_marking", "confidential"),)),
    (2, "monitor", "monitor-content", (("source_code", "source_code"),)),
    (1, "block", "block-classified", (("confidential_marking", "top_secret"),)),
]
EVENT_SQL = (
    "INSERT INTO events (id, ts, user, client, host, service, path, action, would, rule, reason,"
    " categories, findings, prompt_hash, request_bytes, prompt_chars, scan_ms, evidence, reviewed)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, '', '')"
)
FINDING_SQL = (
    "INSERT INTO findings (event_id, ts, type, category, detector, rule, value_hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
DETECTOR = {"pii": "pii", "secret": "secrets", "confidential_marking": "keywords",
            "source_code": "classifier"}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tui")
    group.add_argument("--tui-events", type=int, default=1_000_000, help="events in the store")
    group.add_argument("--tui-runs", type=int, default=7, help="runs per measurement")


def build_store(path: Path, count: int, seed: int = 5, end: float = 1_790_000_000.0) -> None:
    """`count` synthetic events over the 30 days before `end`, in one transaction."""
    rng = random.Random(seed)
    weights = [o[0] for o in OUTCOMES]
    open_store(path).conn.close()
    db = sqlite3.connect(path)
    step = 30 * 86400.0 / count
    events, findings = [], []
    for i in range(count):
        ts = end - (count - i) * step
        _, action, rule, found = rng.choices(OUTCOMES, weights)[0]
        eid = f"{i:016x}"
        cats = ",".join(sorted({c for c, _ in found}))
        records = [
            {"type": t, "category": c, "detector": DETECTOR[c], "start": 10, "end": 30,
             "score": 0.9, "severity": "high", "rule": rule, "excerpt": "ab****yz",
             "value_hash": f"{rng.getrandbits(64):016x}", "segment": 0, "via": ""}
            for c, t in found
        ]  # fmt: skip
        service = rng.choice(SERVICES)
        events.append((
            eid, ts, rng.choice(USERS), "10.0.0.1", f"api.{service}.com", service,
            "/v1/chat/completions", action, rule, "", cats, json.dumps(records),
            f"{rng.getrandbits(64):016x}", 2048, 1800, round(rng.lognormvariate(1.5, 0.6), 3),
        ))  # fmt: skip
        findings += [(eid, ts, r["type"], r["category"], r["detector"], rule, r["value_hash"])
                     for r in records]  # fmt: skip
    with db:
        db.executemany(EVENT_SQL, events)
        db.executemany(FINDING_SQL, findings)
    db.close()


def cached_store(count: int) -> Path:
    """The synthetic store for `count` events, built once under .benchdata/."""
    path = CACHE / f"tui-{count}.db"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        partial = path.with_suffix(".partial")
        for leftover in CACHE.glob(f"{partial.name}*"):
            leftover.unlink()
        began = time.perf_counter()
        build_store(partial, count)
        partial.rename(path)
        print(f"built {path} ({count} events) in {time.perf_counter() - began:.0f} s")
    return path


async def _first_paint(db: Path, policy: Path) -> float:
    """From creating the app to the refresh that shows the first page of rows."""
    from dlpproxy.tui.app import DlpTui

    began = time.perf_counter()
    app = DlpTui(db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.live_ready()
        elapsed = app.live_screen.painted_at - began
        await pilot.press("q")
    return elapsed


async def _filters(db: Path, policy: Path, queries: list[str], runs: int) -> dict[str, list[float]]:
    """From Enter in the filter box to the refresh that shows the filtered first page."""
    from textual.widgets import Input

    from dlpproxy.tui.app import DlpTui

    times: dict[str, list[float]] = {q: [] for q in queries}
    times.update({f"{q} (until done)": [] for q in queries if ":" not in q})
    app = DlpTui(db, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.live_ready()
        box = app.live_screen.query_one("#filter", Input)
        for _ in range(runs):
            for query in [*queries, ""]:
                box.value = query
                box.focus()
                await pilot.pause()
                began = time.perf_counter()
                await pilot.press("enter")
                await app.live_ready()
                if query:
                    times[query].append(app.live_screen.painted_at - began)
                if " " not in query and ":" not in query and query:  # a word search goes on
                    while app.live_screen.searched_to is not None:
                        await asyncio.sleep(0.002)
                    times[f"{query} (until done)"].append(time.perf_counter() - began)
        await pilot.press("q")
    return times


def run(args: argparse.Namespace) -> Section:
    db = cached_store(args.tui_events)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "audit.db"  # a copy: the TUI writes its review marks into the store
        work.write_bytes(db.read_bytes())
        policy = ROOT / "rules" / "policy.yaml"
        paints = [asyncio.run(_first_paint(work, policy)) for _ in range(args.tui_runs)]
        queries = ["user:user0042", "category:secret", "action:block", "service:gemini",
                   "category:source_code user:user0042", "user0042", "no-such-word"]  # fmt: skip
        filters = asyncio.run(_filters(work, policy, queries, args.tui_runs))
    rows = [["first paint (mounted, first page rendered)", _ms(paints), _ms(paints, 1.0)]]
    rows += [[_label(q), _ms(t), _ms(t, 1.0)] for q, t in filters.items()]
    data = {
        "events": args.tui_events,
        "runs": args.tui_runs,
        "first_paint_ms": [round(t * 1000, 1) for t in paints],
        "filter_ms": {q: [round(t * 1000, 1) for t in ts] for q, ts in filters.items()},
    }
    head = f"### Admin TUI with {args.tui_events:,} events (median and max of {args.tui_runs} runs)"
    markdown = f"{head}\n\n{table(['measure', 'median ms', 'max ms'], rows)}\n"
    return Section("tui", markdown, data)


def _label(query: str) -> str:
    if ":" in query:
        return f"filter `{query}`"
    word, _, done = query.partition(" (")
    return f"search `{word}`, " + ("page full or every event read" if done else "first results")


def _ms(values: list[float], quantile: float = 0.5) -> str:
    value = max(values) if quantile >= 1.0 else statistics.median(values)
    return f"{value * 1000:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    section = run(parser.parse_args())
    print(section.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
