"""Reading the audit store for the console: indexed, keyset-paged queries, never the whole table.

Pages are ordered newest first by `(ts, id)` and continue from the last row shown, so page 1,000
costs what page 1 costs. One filter drives the query through its index (user, then category
through the findings table, then service, then action); the others are checked on the rows it
yields (`+column` keeps SQLite from picking a weaker index). New rows are found by rowid.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dlpproxy.audit.store import AuditError, open_store
from dlpproxy.errors import DlpError
from dlpproxy.policy import ACTIONS

VERDICTS = ("reviewed", "false_positive")
FILTER_KEYS = ("user", "category", "action", "service")
COLUMNS = (
    "e.rowid, e.id, e.ts, e.user, e.service, e.action, e.categories, e.rule, "
    "COALESCE(r.verdict, '')"
)
LATENCY_SAMPLE = 20_000
SEARCH_CHUNK = 50_000  # events scanned per query of a word search
SEARCH_BUDGET_S = 0.12  # a word search returns what it found after this long, and goes on later


class FilterError(DlpError):
    """A filter the console cannot apply; says which part and what is accepted."""


@dataclass(frozen=True, slots=True)
class Filters:
    """What the Live screen shows: exact user/category/action/service and words to search."""

    user: str = ""
    category: str = ""
    action: str = ""
    service: str = ""
    text: str = ""

    def describe(self) -> str:
        parts = [f"{f.name}:{getattr(self, f.name)}" for f in fields(self) if f.name != "text"]
        shown = [p for p in parts if not p.endswith(":")]
        if self.text:
            shown.append(f'"{self.text}"')
        return " ".join(shown) or "everything"


def parse_filters(query: str) -> Filters:
    """`user:kim action:block invoice` -> Filters; bare words are searched in the text fields."""
    values: dict[str, str] = {}
    words: list[str] = []
    for token in query.split():
        key, sep, value = token.partition(":")
        if not sep:
            words.append(token)
            continue
        if key not in FILTER_KEYS:
            raise FilterError(f"unknown filter '{key}:'; use {', '.join(FILTER_KEYS)} or words")
        if not value:
            raise FilterError(f"'{key}:' needs a value, e.g. {key}:{_EXAMPLE[key]}")
        if key == "action" and value not in ACTIONS:
            raise FilterError(f"unknown action '{value}'; expected {'|'.join(ACTIONS)}")
        values[key] = value
    return Filters(**values, text=" ".join(words))


_EXAMPLE = {"user": "kim", "category": "secret", "action": "block", "service": "openai"}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the Live table."""

    rowid: int
    id: str
    ts: float
    user: str
    service: str
    action: str
    categories: str
    rule: str
    verdict: str

    @property
    def cursor(self) -> tuple[float, str]:
        return (self.ts, self.id)


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of one page and the cursor the next page starts from (None: nothing older).

    `searched_to` is set when a word search stopped early to show what it has: the time of the
    oldest event it looked at."""

    rows: list[Row]
    next: tuple[float, str] | None
    searched_to: float | None = None


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Aggregates over one time window, each bounded (top lists, a latency sample)."""

    since: float
    until: float
    total: int = 0
    per_action: dict[str, int] = field(default_factory=dict)
    action_series: dict[str, list[int]] = field(default_factory=dict)
    per_category: list[tuple[str, int]] = field(default_factory=list)
    category_series: dict[str, list[int]] = field(default_factory=dict)
    top_users: list[tuple[str, int]] = field(default_factory=list)
    top_services: list[tuple[str, int]] = field(default_factory=list)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    latency_sample: int = 0
    marks_per_rule: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def block_rate(self) -> float:
        return self.per_action.get("block", 0) / self.total if self.total else 0.0


class AuditReader:
    """A connection to the audit store for the console; safe to call from worker threads."""

    def __init__(self, path: Path, timeout: float = 2.0):
        if not path.exists():
            raise AuditError(
                f"{path}: no audit store there; start the proxy (`dlpproxy run --audit-db "
                f"{path}`) or name the store with --db"
            )
        if path.is_dir():
            raise AuditError(f"{path}: is a folder, not an audit store file")
        self.path = path
        _refuse_foreign(path, timeout)
        self._db = open_store(path, timeout=timeout).conn
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self._db.execute(sql, list(params)).fetchall()
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: {exc}") from None

    def last_rowid(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(rowid), 0) FROM events")[0][0])

    def page(
        self, filters: Filters, before: tuple[float, str] | None = None, limit: int = 100
    ) -> Page:
        """Up to `limit` matching events, newest first, older than `before` (a cursor).

        Word searches have no index: they scan at most `SEARCH_BUDGET_S` worth of events per
        call and return what they found with where to go on, so results arrive piece by piece.
        """
        if filters.text:
            return self._search(filters, before, limit)
        by_category = bool(filters.category) and not filters.user
        where, params = _conditions(filters, by_category)
        if by_category:
            source = (
                "findings f JOIN events e ON e.id = f.event_id "
                "LEFT JOIN reviews r ON r.event_id = e.id"
            )
            order, key = "f.ts DESC, f.event_id DESC", "(f.ts, f.event_id)"
            select = f"SELECT DISTINCT {COLUMNS}, f.ts, f.event_id"
        else:
            source = "events e LEFT JOIN reviews r ON r.event_id = e.id"
            order, key, select = "e.ts DESC, e.id DESC", "(e.ts, e.id)", f"SELECT {COLUMNS}"
        if before is not None:
            where.append(f"{key} < (?, ?)")
            params += [before[0], before[1]]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"{select} FROM {source} {clause} ORDER BY {order} LIMIT ?"
        rows = [Row(*r[:9]) for r in self._query(sql, [*params, limit])]
        return Page(rows, rows[-1].cursor if len(rows) == limit else None)

    def _search(self, filters: Filters, before: tuple[float, str] | None, limit: int) -> Page:
        """Scan back in slices of about SEARCH_CHUNK events, cut by time on the ts index."""
        where, params = _conditions(filters, False)
        found: list[Row] = []
        began = time.monotonic()
        cursor = before or (float("inf"), "")
        while True:
            edge = self._query(
                "SELECT ts FROM events WHERE ts <= ? ORDER BY ts DESC LIMIT 1 OFFSET ?",
                [cursor[0], SEARCH_CHUNK],
            )
            lower = float(edge[0][0]) if edge else float("-inf")
            terms = [*where, "(e.ts, e.id) < (?, ?)", "e.ts > ?"]
            sql = (
                f"SELECT {COLUMNS} FROM events e LEFT JOIN reviews r ON r.event_id = e.id "
                f"WHERE {' AND '.join(terms)} ORDER BY e.ts DESC, e.id DESC LIMIT ?"
            )
            found += [Row(*r) for r in self._query(sql, [*params, *cursor, lower, limit])]
            if len(found) >= limit:
                return Page(found[:limit], found[limit - 1].cursor)
            if not edge:
                return Page(found, None)
            cursor = (lower, "\uffff")  # next: everything at `lower` and older
            if time.monotonic() - began > SEARCH_BUDGET_S:
                return Page(found, cursor, searched_to=lower)

    def newer(self, filters: Filters, after_rowid: int, limit: int = 500) -> list[Row]:
        """Matching events stored after `after_rowid` (the Live screen's poll), oldest first."""
        unindexed = replace(filters, user="", service="", action="")
        where, params = _conditions(unindexed, False)
        for name in ("user", "service", "action"):
            if getattr(filters, name):
                where.append(f"+e.{name} = ?")
                params.append(getattr(filters, name))
        where.insert(0, "e.rowid > ?")
        sql = (
            f"SELECT {COLUMNS} FROM events e LEFT JOIN reviews r ON r.event_id = e.id "
            f"WHERE {' AND '.join(where)} ORDER BY e.rowid LIMIT ?"
        )
        return [Row(*r) for r in self._query(sql, [after_rowid, *params, limit])]

    def event(self, event_id: str) -> dict[str, Any] | None:
        """One stored event with its findings parsed and its review verdict."""
        names = ("id", "ts", "user", "client", "host", "service", "path", "action", "would",
                 "rule", "reason", "categories", "findings", "scan_ms", "prompt_chars")  # fmt: skip
        rows = self._query(f"SELECT {', '.join(names)} FROM events WHERE id = ?", [event_id])
        if not rows:
            return None
        event = dict(zip(names, rows[0], strict=True))
        try:
            event["findings"] = json.loads(event["findings"] or "[]")
        except json.JSONDecodeError:
            event["findings"] = []
        verdict = self._query("SELECT verdict FROM reviews WHERE event_id = ?", [event_id])
        event["verdict"] = verdict[0][0] if verdict else ""
        return event

    def mark(self, event_id: str, verdict: str, rule: str) -> None:
        """Record an admin's verdict on an event ('' removes it)."""
        if verdict and verdict not in VERDICTS:
            raise FilterError(f"unknown verdict '{verdict}'; expected {'|'.join(VERDICTS)}")
        try:
            with self._lock, self._db:
                if verdict:
                    self._db.execute(
                        "INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?, ?)",
                        [event_id, verdict, rule, time.time(), _reviewer()],
                    )
                else:
                    self._db.execute("DELETE FROM reviews WHERE event_id = ?", [event_id])
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: could not store the mark ({exc})") from None

    def heartbeats(self) -> list[dict[str, Any]]:
        names = ("id", "pid", "host", "version", "started", "last_seen", "state", "status")
        rows = self._query(f"SELECT {', '.join(names)} FROM heartbeat ORDER BY last_seen DESC")
        out = []
        for row in rows[:20]:
            beat = dict(zip(names, row, strict=True))
            try:
                beat["status"] = json.loads(beat["status"] or "{}")
            except json.JSONDecodeError:
                beat["status"] = {}
            out.append(beat)
        return out

    def dashboard(self, since: float, until: float, buckets: int = 24) -> Dashboard:
        """Counts, series, top lists and latency percentiles for events in [since, until)."""
        width = max((until - since) / buckets, 1e-9)
        span = [since, until]
        per_action = dict(self._query(
            "SELECT action, COUNT(*) FROM events WHERE ts >= ? AND ts < ? GROUP BY action", span
        ))  # fmt: skip
        action_series = _series(self._query(
            "SELECT CAST((ts - ?) / ? AS INTEGER), action, COUNT(*) FROM events "
            "WHERE ts >= ? AND ts < ? GROUP BY 1, 2", [since, width, *span]
        ), buckets)  # fmt: skip
        category_series = _series(self._query(
            "SELECT CAST((ts - ?) / ? AS INTEGER), category, COUNT(DISTINCT event_id) "
            "FROM findings WHERE ts >= ? AND ts < ? GROUP BY 1, 2", [since, width, *span]
        ), buckets)  # fmt: skip
        per_category = sorted(
            ((c, sum(s)) for c, s in category_series.items()), key=lambda x: (-x[1], x[0])
        )
        top_users = self._query(
            "SELECT user, COUNT(*) AS n FROM events WHERE ts >= ? AND ts < ? AND "
            "action != 'allow' GROUP BY user ORDER BY n DESC, user LIMIT 5",
            span,
        )
        top_services = self._query(
            "SELECT service, COUNT(*) AS n FROM events WHERE ts >= ? AND ts < ? "
            "GROUP BY service ORDER BY n DESC, service LIMIT 5",
            span,
        )
        sample = sorted(r[0] for r in self._query(
            "SELECT scan_ms FROM events WHERE ts >= ? AND ts < ? ORDER BY ts DESC LIMIT ?",
            [*span, LATENCY_SAMPLE],
        ))  # fmt: skip
        marks = self._query(
            "SELECT rule, SUM(verdict = 'false_positive'), SUM(verdict = 'reviewed') "
            "FROM reviews GROUP BY rule ORDER BY 2 DESC, 3 DESC, rule LIMIT 8"
        )
        return Dashboard(
            since, until, sum(per_action.values()), per_action, action_series, per_category,
            category_series, [tuple(r) for r in top_users], [tuple(r) for r in top_services],
            _quantile(sample, 0.5), _quantile(sample, 0.99), len(sample),
            [(str(r[0] or "-"), int(r[1]), int(r[2])) for r in marks],
        )  # fmt: skip


def _refuse_foreign(path: Path, timeout: float) -> None:
    """Another program's SQLite file is not written to: opening the store would add tables."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            db.close()
    except sqlite3.Error:
        return  # open_store says what is wrong with it
    if tables and "events" not in tables:
        shown = ", ".join(sorted(tables)[:5])
        raise AuditError(f"{path}: not a dlpproxy audit store (its tables: {shown})")


def _conditions(filters: Filters, by_category: bool) -> tuple[list[str], list[Any]]:
    """WHERE terms: the first present of user/category/service/action may use its index."""
    where: list[str] = []
    params: list[Any] = []
    indexed = not by_category
    if filters.user:
        where.append("e.user = ?")
        params.append(filters.user)
        indexed = False
    if filters.category:
        if by_category:
            where.append("f.category = ?")
        else:
            where.append(
                "EXISTS (SELECT 1 FROM findings f2 WHERE f2.event_id = e.id AND f2.category = ?)"
            )
        params.append(filters.category)
    for name in ("service", "action"):
        value = getattr(filters, name)
        if value:
            where.append(f"{'' if indexed else '+'}e.{name} = ?")
            params.append(value)
            indexed = False
    if filters.text:
        words, more = _words(filters.text)
        where.append(words)
        params += more
    return where, params


def _words(text: str) -> tuple[str, list[str]]:
    """Every word in one of the text columns (LIKE: case-insensitive for ASCII)."""
    terms: list[str] = []
    params: list[str] = []
    cols = ("e.id", "e.user", "e.service", "e.host", "e.rule", "e.categories")
    for word in text.split():
        like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        terms.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in cols) + ")")
        params += [like] * len(cols)
    return "(" + " AND ".join(terms) + ")", params


def _series(rows: list[tuple[Any, ...]], buckets: int) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for bucket, name, count in rows:
        if 0 <= int(bucket) < buckets:
            out.setdefault(str(name), [0] * buckets)[int(bucket)] += int(count)
    return out


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def _reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
