"""The console's reads of the audit store: filters, keyset pages, polling, marks, aggregates,
and bad store files. Real SQLite files written with the store's own API."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from dlpproxy.audit.store import AuditError, AuditWriter, open_store
from dlpproxy.tui import queries
from dlpproxy.tui.queries import AuditReader, FilterError, Filters, Row, parse_filters
from tests import tui_store
from tests.tui_store import T0, event, fill

store, utc = tui_store.store, tui_store.utc


def ids(rows: list[Row]) -> list[str]:
    return [r.id for r in rows]


def test_filter_text_parses_keys_and_words() -> None:
    f = parse_filters("user:kim action:block  invoice q3")
    assert f == Filters(user="kim", action="block", text="invoice q3")
    assert f.describe() == 'user:kim action:block "invoice q3"'


@pytest.mark.parametrize(
    ("query", "problem"),
    [("who:kim", "unknown filter 'who:'"), ("action:mask2", "unknown action 'mask2'"),
     ("user:", "'user:' needs a value")],
)  # fmt: skip
def test_bad_filter_says_what_is_accepted(query: str, problem: str) -> None:
    with pytest.raises(FilterError, match=problem):
        parse_filters(query)


def test_pages_are_newest_first_and_continue_after_the_last_row(store: Path) -> None:
    reader = AuditReader(store)
    first = reader.page(Filters(), None, 4).rows
    assert ids(first) == ["evt0000000000009", "evt0000000000008", "evt0000000000007",
                          "evt0000000000006"]  # fmt: skip
    rest = reader.page(Filters(), first[-1].cursor, 100).rows
    assert len(rest) == 6 and rest[0].id == "evt0000000000005" and rest[-1].id.endswith("00")


def test_each_filter_selects_exactly_its_events(store: Path) -> None:
    reader = AuditReader(store)
    assert ids(reader.page(parse_filters("user:kim")).rows) == [
        "evt0000000000007", "evt0000000000003", "evt0000000000000"]  # fmt: skip
    assert len(reader.page(parse_filters("action:block")).rows) == 4
    assert ids(reader.page(parse_filters("service:anthropic")).rows) == [
        "evt0000000000008", "evt0000000000001"]  # fmt: skip
    # event 3 and 9 hold two findings each: each event is listed once
    pii = ids(reader.page(parse_filters("category:pii")).rows)
    assert pii == ["evt0000000000009", "evt0000000000007", "evt0000000000003",
                   "evt0000000000002"]  # fmt: skip
    assert ids(reader.page(parse_filters("category:pii user:kim action:block")).rows) == [
        "evt0000000000003"]  # fmt: skip
    assert ids(reader.page(parse_filters("deepseek")).rows) == ["evt0000000000006"]
    assert reader.page(parse_filters("nothing-like-this")).rows == []


def test_category_pages_continue_without_repeating(store: Path) -> None:
    reader = AuditReader(store)
    first = reader.page(parse_filters("category:pii"), None, 2).rows
    second = reader.page(parse_filters("category:pii"), first[-1].cursor, 2).rows
    assert ids(first + second) == ["evt0000000000009", "evt0000000000007",
                                   "evt0000000000003", "evt0000000000002"]  # fmt: skip


def test_word_search_goes_on_chunk_by_chunk_to_the_oldest_event(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the sizes shrunk so that ten events take four chunks; the queries are the real ones
    monkeypatch.setattr(queries, "SEARCH_CHUNK", 3)
    monkeypatch.setattr(queries, "SEARCH_BUDGET_S", 0.0)
    reader = AuditReader(store)
    found, cursor, calls = [], None, 0
    while True:
        page = reader.page(parse_filters("openai"), cursor, 100)
        found += ids(page.rows)
        calls += 1
        if page.next is None:
            break
        assert page.searched_to == page.next[0]
        cursor = page.next
    assert found == ["evt0000000000009", "evt0000000000005", "evt0000000000004",
                     "evt0000000000000"]  # fmt: skip
    assert calls == 4


def test_word_search_page_ends_at_its_last_row(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "SEARCH_CHUNK", 3)
    reader = AuditReader(store)
    first = reader.page(parse_filters("OpenAI"), None, 2)
    assert ids(first.rows) == ["evt0000000000009", "evt0000000000005"]
    assert first.next == first.rows[-1].cursor and first.searched_to is None
    rest = reader.page(parse_filters("OpenAI"), first.next, 2)
    assert ids(rest.rows) == ["evt0000000000004", "evt0000000000000"]


def test_poll_finds_only_rows_stored_after_the_last_seen(store: Path) -> None:
    reader = AuditReader(store)
    top = reader.last_rowid()
    assert reader.newer(Filters(), top) == []
    db = open_store(store)
    from dlpproxy.audit.store import insert_events

    insert_events(db, [event(20, -5, "kim", "openai", "block", "block-secrets", ()),
                       event(21, -6, "lee", "openai", "allow", "", ())])  # fmt: skip
    assert ids(reader.newer(Filters(), top)) == ["evt0000000000020", "evt0000000000021"]
    assert ids(reader.newer(parse_filters("user:lee"), top)) == ["evt0000000000021"]


def test_marks_are_stored_per_event_and_counted_per_rule(store: Path) -> None:
    reader = AuditReader(store)
    reader.mark("evt0000000000001", "false_positive", "block-secrets")
    reader.mark("evt0000000000006", "false_positive", "block-secrets")
    reader.mark("evt0000000000002", "reviewed", "redact-contact-data")
    event_1 = reader.event("evt0000000000001")
    assert event_1 is not None and event_1["verdict"] == "false_positive"
    assert reader.page(Filters(), None, 100).rows[-2].verdict == "false_positive"
    board = reader.dashboard(T0 - 3600, T0)
    assert board.marks_per_rule == [("block-secrets", 2, 0), ("redact-contact-data", 0, 1)]
    reader.mark("evt0000000000006", "", "block-secrets")
    assert reader.dashboard(T0 - 3600, T0).marks_per_rule[0] == ("block-secrets", 1, 0)


def test_dashboard_counts_the_window_only(store: Path) -> None:
    board = AuditReader(store).dashboard(T0 - 1000, T0, buckets=10)
    assert board.total == 5  # events at 900, 600, 300, 120, 60 s before T0
    assert board.per_action == {"allow": 2, "block": 2, "redact": 1}
    assert board.block_rate == pytest.approx(0.4)
    assert board.action_series["block"] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert board.per_category == [("pii", 2), ("secret", 2)]
    assert board.top_users == [("kim", 1), ("lee", 1), ("park", 1)]  # not counting allow
    assert board.top_services[0] == ("openai", 2)
    assert board.latency_sample == 5 and board.p50_ms == 12.5 and board.p99_ms == 15.5


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="no audit store there"):
        AuditReader(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_another_programs_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE kgrams (hash INTEGER)")
    other.commit()
    other.close()
    with pytest.raises(AuditError, match=r"not a dlpproxy audit store \(its tables: kgrams\)"):
        AuditReader(path)
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("kgrams",)]


def test_locked_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        began = time.monotonic()
        with pytest.raises(AuditError, match="locked by another process"):
            AuditReader(path, timeout=0.2)
        assert time.monotonic() - began < 5
    finally:
        holder.rollback()
        holder.close()


def test_schema_1_store_gains_reviews_and_heartbeat_and_keeps_its_events(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill(path)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE reviews")
    db.execute("DROP TABLE heartbeat")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    db.commit()
    db.close()
    reader = AuditReader(path)
    assert len(reader.page(Filters(), None, 100).rows) == 10
    reader.mark("evt0000000000001", "reviewed", "block-secrets")
    assert reader.heartbeats() == []
    version = sqlite3.connect(path).execute("SELECT value FROM meta").fetchone()[0]
    assert version == "2"


def test_audit_writer_beats_and_says_stopped_on_close(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    writer = AuditWriter(path, interval=0.05)
    writer.status.update(detectors=["secrets", "pii"], classifier_device="cuda")
    deadline = time.monotonic() + 5
    reader = AuditReader(path)
    while not reader.heartbeats() and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.close()
    beat = reader.heartbeats()[0]
    assert beat["state"] == "stopped"
    assert beat["status"]["detectors"] == ["secrets", "pii"]
    assert beat["status"]["classifier_device"] == "cuda"
    assert beat["last_seen"] >= beat["started"]
