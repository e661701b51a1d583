"""The console driven with textual's Pilot: every screen and key, on a real SQLite store and a
real copy of the policy file."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from dlpproxy.audit.store import beat, insert_events, open_store
from dlpproxy.cli import main
from dlpproxy.tui import queries
from dlpproxy.tui.app import DlpTui, HelpScreen
from dlpproxy.tui.incident import IncidentScreen
from dlpproxy.tui.live import LiveScreen
from tests import tui_store
from tests.tui_store import T0, event

store, policy, utc = tui_store.store, tui_store.policy, tui_store.utc
pytestmark = pytest.mark.anyio


def console(store: Path, policy: Path) -> DlpTui:
    return DlpTui(store, policy, now=lambda: T0, poll_s=0.05)


def text_of(app: DlpTui, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


def table(app: DlpTui, selector: str = "#events") -> DataTable[object]:
    return app.screen.query_one(selector, DataTable)


def first_column(app: DlpTui, selector: str, column: int = 0) -> list[str]:
    t = table(app, selector)
    return [str(t.get_row_at(i)[column]) for i in range(t.row_count)]


async def settle(app: DlpTui, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


async def go(app: DlpTui, pilot: object, *keys: str) -> None:
    """Press keys, then wait until every worker is done and the screen has caught up."""
    await pilot.press(*keys)  # type: ignore[attr-defined]
    await settle(app, pilot)


async def until(condition: object, pilot: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition() and loop.time() < deadline:  # type: ignore[operator]
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    assert condition(), "condition not reached in time"  # type: ignore[operator]


async def test_live_lists_newest_first_coloured_by_action(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        assert isinstance(app.screen, LiveScreen)
        rows = [table(app).get_row_at(i) for i in range(table(app).row_count)]
        assert len(rows) == 10
        assert [str(c) for c in rows[0][:4]] == ["09-21 14:12:20", "lee", "openai", "block"]
        assert rows[0][3].style == "bold red" and rows[2][3].style == "yellow"
        assert str(rows[0][5]) == "pii secret"
        assert "LIVE · everything · 10 rows" in text_of(app, "#state")
        await pilot.press("q")
    assert app.return_code in (0, None)


async def test_filter_box_applies_user_category_action_service(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        for query, users in (
            ("user:kim", ["kim", "kim", "kim"]),
            ("category:secret", ["lee", "park", "lee"]),
            ("action:redact service:claude", ["kim"]),
            ("anthropic", ["choi", "lee"]),
        ):
            await pilot.press("slash", *query, "enter")
            await app.live_ready()
            assert first_column(app, "#events", 1) == users, query
        assert app.focused is table(app)
        await pilot.press("c")
        await app.live_ready()
        assert table(app).row_count == 10


async def test_bad_filter_is_explained_and_keeps_the_rows(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "slash", *"action:mask2", "enter")
        assert "unknown action 'mask2'" in text_of(app, "#state")
        assert table(app).row_count == 10
        assert app.focused is app.screen.query_one("#filter", Input)  # still there to fix it
        await pilot.press("escape")
        assert app.focused is table(app)


async def test_word_search_shows_hits_as_it_goes(
    store: Path, policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chunks of 3 events, each returned at once: the table fills in four steps
    monkeypatch.setattr(queries, "SEARCH_CHUNK", 3)
    monkeypatch.setattr(queries, "SEARCH_BUDGET_S", 0.0)
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await pilot.press("slash", *"openai", "enter")
        await until(
            lambda: '"openai"' in text_of(app, "#state") and app.live_screen.exhausted, pilot
        )
        assert first_column(app, "#events", 1) == ["lee", "lee", "choi", "kim"]
        assert text_of(app, "#state").startswith('LIVE · "openai" · 4 rows')


async def test_new_decisions_appear_at_the_top(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        db = open_store(store)
        insert_events(db, [event(30, -10, "jung", "mistral", "block", "block-secrets", ())])
        await until(lambda: first_column(app, "#events", 1)[0] == "jung", pilot)
        assert table(app).row_count == 11


async def test_pause_holds_new_rows_and_counts_them(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await pilot.press("space")
        insert_events(open_store(store), [event(31, -10, "jung", "openai", "allow", "", ())])
        await until(lambda: "1 new" in text_of(app, "#state"), pilot)
        assert "PAUSED" in text_of(app, "#state")
        assert first_column(app, "#events", 1)[0] == "lee"
        await pilot.press("space")
        await until(lambda: first_column(app, "#events", 1)[0] == "jung", pilot)


async def test_scrolling_down_loads_older_pages(tmp_path: Path, policy: Path, utc: None) -> None:
    path = tmp_path / "audit.db"
    db = open_store(path)
    insert_events(db, [event(n, 10_000 - n, f"u{n}", "openai", "allow", "", ())
                       for n in range(250)])  # fmt: skip
    app = console(path, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        assert table(app).row_count == 100
        await pilot.press("G")
        await until(lambda: table(app).row_count == 200, pilot)
        await pilot.press("G")
        await until(lambda: table(app).row_count == 250, pilot)
        users = first_column(app, "#events", 1)
        assert users[0] == "u249" and users[-1] == "u0" and len(set(users)) == 250


async def test_incident_shows_masked_findings_and_takes_review_marks(
    store: Path, policy: Path
) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "enter")
        assert isinstance(app.screen, IncidentScreen)
        assert text_of(app, "#incident-id") == "evt0000000000009"
        summary = text_of(app, "#summary")
        assert "rule block-secrets" in summary and "scan 15.5 ms" in summary
        assert "not reviewed" in summary
        assert text_of(app, "#findings").splitlines() == [
            "findings (2)",
            " 1. secret/aws_access_key_id  secrets 0.97 high  rule block-secrets",
            "    id = AK****************CD",
            " 2. pii/email  pii 0.97 high  rule redact-contact-data",
            "    remind ji****@example-corp.co.kr",
        ]
        await pilot.press("c")
        assert app.clipboard == "evt0000000000009"
        await go(app, pilot, "f")
        assert "false positive" in text_of(app, "#summary")
        await pilot.press("escape")
        await app.live_ready()
        assert isinstance(app.screen, LiveScreen)
        assert str(table(app).get_row_at(0)[4]) == "FP"
    verdicts = sqlite3.connect(store).execute("SELECT event_id, verdict, rule FROM reviews")
    assert verdicts.fetchall() == [("evt0000000000009", "false_positive", "block-secrets")]


async def test_dashboard_shows_counts_rates_top_lists_and_noisy_rules(
    store: Path, policy: Path
) -> None:
    app = console(store, policy)
    app.reader.mark("evt0000000000006", "false_positive", "block-secrets")
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "d")
        totals = text_of(app, "#totals")
        assert "last 24 h · 10 events" in totals and "block rate 40.0%" in totals
        assert "scan p50 9.5 ms p99 15.5 ms" in totals
        assert text_of(app, "#users").split() == ["kim", "2", "lee", "2", "park", "2", "choi", "1"]
        assert text_of(app, "#services").splitlines()[0].split() == ["openai", "4"]
        assert text_of(app, "#marks").split() == ["block-secrets", "1/0"]
        await go(app, pilot, "w")
        assert "last 7 d · 10 events" in text_of(app, "#totals")
        await pilot.press("w", "w")  # 30 d, then 1 h
        await settle(app, pilot)
        assert "last 1 h ·" in text_of(app, "#totals")


async def test_policy_toggle_is_written_and_validated(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "p")
        assert first_column(app, "#settings", 1)[:2] == ["whole policy", "secrets"]
        await go(app, pilot, "down", "space")
        assert "  secrets: monitor\n" in policy.read_text()
        assert "saved packs.secrets = monitor" in text_of(app, "#message")
        assert str(table(app, "#settings").get_row_at(1)[3]) == "monitor"


async def test_policy_threshold_edit_errors_show_in_place(store: Path, policy: Path) -> None:
    before = policy.read_text()
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "p")
        keys = [s.dotted for s in app.policy.settings]
        table(app, "#settings").move_cursor(row=keys.index("thresholds.classifier.source_code"))
        await go(app, pilot, "e")
        box = app.screen.query_one("#value", Input)
        assert app.focused is box and box.value == "0.8"
        box.value = ""
        await pilot.press("2", "enter")
        assert "2 is outside 0..1" in text_of(app, "#message")
        assert policy.read_text() == before
        box.value = ""
        await go(app, pilot, *"0.7", "enter")
        assert "source_code: 0.7\n" in policy.read_text()


async def test_read_only_policy_says_so_and_writes_nothing(store: Path, policy: Path) -> None:
    policy.chmod(0o444)
    before = policy.read_bytes()
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "p")
        assert "READ-ONLY" in text_of(app, "#message")
        await go(app, pilot, "space")
        assert "no write permission; nothing was written" in text_of(app, "#message")
    assert policy.read_bytes() == before


async def test_broken_policy_shows_the_error_and_other_screens_work(
    store: Path, policy: Path
) -> None:
    policy.write_text(policy.read_text().replace("mode: enforce ", "mode: sometimes "))
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "p")
        assert "mode 'sometimes' not in enforce|monitor" in text_of(app, "#message")
        assert table(app, "#settings").row_count == 0
        await pilot.press("l")
        assert table(app).row_count == 10


async def test_status_shows_heartbeat_device_latency_and_local_model(
    store: Path, policy: Path
) -> None:
    db = open_store(store)
    timing = {"classifier": {"p50": 1.25, "p99": 4.5, "n": 200}}
    status = {"detectors": ["secrets", "pii"], "classifier_device": "cuda", "detector_ms": timing}
    beat(db, T0 - 3600, status, "running")
    db.execute("UPDATE heartbeat SET last_seen = ?", [T0 - 2])
    db.conn.commit()
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "s")
        status = text_of(app, "#status")
        assert "alive  seen 2 s ago" in status
        assert "detectors secrets,pii · classifier CUDA p50 1.2 ms p99 4.5 ms" in status
        assert "p50 14.0 ms · p99 15.5 ms over 3 events" in status  # 300, 120, 60 s ago
        assert "local models: not configured" in status
        db.execute("UPDATE heartbeat SET last_seen = ?", [T0 - 60])
        db.conn.commit()
        await go(app, pilot, "r")
        assert "no heartbeat  seen 60 s ago" in text_of(app, "#status")


async def test_status_reads_local_model_health_from_the_heartbeat(
    store: Path, policy: Path
) -> None:
    policy.write_text(
        policy.read_text() + "\nlocal_models:\n  sovereign:\n    base_url: http://gpu1:8000/v1\n"
    )
    db = open_store(store)
    beat(db, T0, {"local_models": {"sovereign": "down: connect refused"}}, "running")
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "s")
        assert "sovereign http://gpu1:8000/v1 down: connect refused" in text_of(app, "#status")


async def test_help_opens_and_closes(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, LiveScreen)


async def test_tiny_terminal_shows_a_note_then_recovers(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.live_ready()
        for key in ("d", "p", "s", "l"):
            await pilot.press(key)
            await pilot.resize_terminal(40, 12)
            await pilot.pause()
            assert app.screen.has_class("-small")
            assert app.screen.query_one("#too-small").display
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            assert not app.screen.has_class("-small")
        await pilot.press("q")


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda p: None, "no audit store there"),
        (lambda p: p.write_bytes(b"garbage" * 200), "not a usable audit store"),
        (lambda p: (open_store(p).execute("UPDATE meta SET value='7'"), None)[1],
         "written by a newer dlpproxy"),
    ],
)  # fmt: skip
def test_cli_bad_store_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prepare: object, message: str
) -> None:
    db = tmp_path / "audit.db"
    prepare(db)  # type: ignore[operator]
    assert main(["tui", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlpproxy tui: error: ") and message in err
    assert "Traceback" not in err


def test_textual_is_imported_only_when_the_console_runs() -> None:
    code = (
        "import sys; from dlpproxy.cli import _parser; _parser(['tui']); "
        "import dlpproxy.cli.tui; print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_u_keeps_only_the_selected_rows_user(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await pilot.press("down", "u")
        await app.live_ready()
        assert first_column(app, "#events", 1) == ["choi", "choi"]
        assert app.screen.query_one("#filter", Input).value == "user:choi"


async def test_reviewed_then_unmarked_leaves_no_mark(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "enter", "r")
        assert "review reviewed" in text_of(app, "#summary")
        assert app.reader.event("evt0000000000009")["verdict"] == "reviewed"  # type: ignore[index]
        await go(app, pilot, "x")
        assert "not reviewed" in text_of(app, "#summary")
    assert sqlite3.connect(store).execute("SELECT COUNT(*) FROM reviews").fetchone() == (0,)


async def test_policy_reload_shows_an_edit_made_by_hand(store: Path, policy: Path) -> None:
    app = console(store, policy)
    async with app.run_test() as pilot:
        await app.live_ready()
        await go(app, pilot, "p")
        policy.write_text(policy.read_text().replace("  pii: enforce", "  pii: monitor"))
        await go(app, pilot, "R")
        assert str(table(app, "#settings").get_row_at(2)[3]) == "monitor"
        assert "reloaded" in text_of(app, "#message")
