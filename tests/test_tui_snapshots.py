"""Snapshots of every console screen at 80x24 (and the note at 40x12), from a fixed store, a
fixed clock and times in UTC. `pytest --snapshot-update tests/test_tui_snapshots.py` rewrites
them after a deliberate change; look at tests/__snapshots__/test_tui_snapshots/*.svg first."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from dlpproxy.audit.store import open_store
from dlpproxy.tui.app import DlpTui
from tests import tui_store
from tests.tui_store import T0

utc = tui_store.utc
Compare = Callable[..., bool]


@pytest.fixture
def here(tmp_path: Path, utc: None) -> Iterator[Path]:
    """A store and policy in the working folder, so screens show short, fixed paths."""
    tui_store.fill(tmp_path / "audit.db")
    (tmp_path / "policy.yaml").write_text(tui_store.POLICY.read_text(encoding="utf-8"))
    db = open_store(tmp_path / "audit.db")
    status = (
        '{"detectors": ["secrets", "pii", "keywords", "classifier"], "classifier_device": "cuda"}'
    )
    db.execute(
        "INSERT INTO heartbeat VALUES ('gw1:4242', 4242, 'gw1', '0.1.0', ?, ?, 'running', ?)",
        [T0 - 7200, T0 - 3, status],
    )
    db.execute("INSERT INTO reviews VALUES ('evt0000000000006', 'false_positive', "
               "'block-secrets', ?, 'analyst')", [T0])  # fmt: skip
    db.conn.commit()
    db.conn.close()
    before = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(before)


def console() -> DlpTui:
    return DlpTui(Path("audit.db"), Path("policy.yaml"), now=lambda: T0, poll_s=3600.0)


def after(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run(pilot: Pilot[None]) -> None:
        app: DlpTui = pilot.app  # type: ignore[assignment]
        await app.live_ready()
        for key in keys:
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause()
        await app.workers.wait_for_complete()

    return run


def test_live(here: Path, snap_compare: Compare) -> None:
    assert snap_compare(console(), run_before=after())


def test_live_filtered_by_category(here: Path, snap_compare: Compare) -> None:
    assert snap_compare(console(), run_before=after("slash", *"category:pii", "enter"))


def test_incident(here: Path, snap_compare: Compare) -> None:
    assert snap_compare(console(), run_before=after("down", "down", "down", "enter"))


def test_dashboard(here: Path, snap_compare: Compare) -> None:
    assert snap_compare(console(), run_before=after("d", "w", "w", "w"))  # 24 h -> 1 h


def test_policy(here: Path, snap_compare: Compare) -> None:
    assert snap_compare(console(), run_before=after("p"))


def test_status(here: Path, snap_compare: Compare) -> None:
    assert snap_compare(console(), run_before=after("s"))


def test_help(here: Path, snap_compare: Compare) -> None:
    assert snap_compare(console(), run_before=after("question_mark"))


def test_terminal_too_small(here: Path, snap_compare: Compare) -> None:
    assert snap_compare(console(), run_before=after(), terminal_size=(40, 12))
