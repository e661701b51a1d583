"""The audit store: one SQLite file (WAL) with an event per decision and its findings.

Never the raw secret or prompt: a finding is stored as type, span, score, a masked excerpt and a
salted hash of the value; the prompt as a hash and sizes. Raw text is kept only when the policy
turns on evidence capture. Events are written by `AuditWriter`, a background thread that batches
inserts, so recording a decision never waits on the disk.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import sqlite_utils

from dlpproxy import __version__
from dlpproxy.errors import DlpError

# 2: `reviews` (an admin's verdict on an event) and `heartbeat` (one row per running proxy).
SCHEMA_VERSION = 2
HEARTBEAT_EVERY_S = 5.0


class AuditError(DlpError):
    """The audit store cannot be opened or written; says which file and why."""


@dataclass(frozen=True, slots=True)
class FindingRecord:
    type: str
    category: str
    detector: str
    start: int
    end: int
    score: float
    severity: str
    rule: str
    excerpt: str
    value_hash: str
    segment: int = 0
    via: str = ""


def new_event_id() -> str:
    """A fresh event (incident) id: 16 hex digits of a random UUID."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One decision, as stored. `evidence` is empty unless the policy captures evidence."""

    action: str
    ts: float = field(default_factory=time.time)
    id: str = field(default_factory=new_event_id)
    user: str = ""
    client: str = ""
    host: str = ""
    service: str = ""
    path: str = ""
    would: str = ""
    rule: str = ""
    reason: str = ""
    categories: tuple[str, ...] = ()
    findings: tuple[FindingRecord, ...] = ()
    prompt_hash: str = ""
    request_bytes: int = 0
    prompt_chars: int = 0
    scan_ms: float = 0.0
    evidence: str = ""

    def row(self) -> dict[str, Any]:
        """The event as a table row (flat fields read directly: `asdict` deep-copies, slowly)."""
        row = {name: getattr(self, name) for name in EVENT_COLUMNS}
        row["categories"] = ",".join(self.categories)
        records = [{n: getattr(f, n) for n in FINDING_FIELDS} for f in self.findings]
        row["findings"] = json.dumps(records, ensure_ascii=False)
        return row


def open_store(path: Path, timeout: float = 10.0) -> sqlite_utils.Database:
    """Open (creating if needed) the store in WAL mode; a newer or foreign file is refused."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        _ensure_schema(db, path)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise AuditError(
                f"{path}: locked by another process ({exc}); wait for it to finish and retry"
            ) from None
        raise AuditError(f"{path}: not a usable audit store ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise AuditError(f"{path}: not a usable audit store ({exc})") from None
    except OSError as exc:
        raise AuditError(f"{path}: cannot open ({exc.strerror or exc})") from None
    return db


def _ensure_schema(db: sqlite_utils.Database, path: Path) -> None:
    if "meta" in db.table_names():
        version = int(db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise AuditError(
                f"{path}: written by a newer dlpproxy (schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade dlpproxy or use another --audit-db"
            )
        if version < 2:
            _add_reviews_and_heartbeat(db)
        return
    events = db["events"]
    events.create(  # type: ignore[union-attr]
        {
            "id": str, "ts": float, "user": str, "client": str, "host": str, "service": str,
            "path": str, "action": str, "would": str, "rule": str, "reason": str,
            "categories": str, "findings": str, "prompt_hash": str, "request_bytes": int,
            "prompt_chars": int, "scan_ms": float, "evidence": str, "reviewed": str,
        },
        pk="id",
        if_not_exists=True,
    )  # fmt: skip
    db["findings"].create(  # type: ignore[union-attr]
        {"event_id": str, "ts": float, "type": str, "category": str, "detector": str,
         "rule": str, "value_hash": str},
        if_not_exists=True,
    )  # fmt: skip
    for table, columns in (
        ("events", ["ts"]), ("events", ["user", "ts"]), ("events", ["action", "ts"]),
        ("events", ["service", "ts"]), ("findings", ["category", "ts"]),
        ("findings", ["event_id"]), ("findings", ["rule"]),
    ):  # fmt: skip
        db[table].create_index(columns, if_not_exists=True)  # type: ignore[union-attr]
    _add_reviews_and_heartbeat(db)


def _add_reviews_and_heartbeat(db: sqlite_utils.Database) -> None:
    """Schema 2, also the migration from 1: tables added, nothing existing changed."""
    with db.conn:
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS reviews (event_id TEXT PRIMARY KEY, verdict TEXT, "
            "rule TEXT, ts REAL, reviewer TEXT)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS idx_reviews_rule ON reviews (rule, verdict)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS heartbeat (id TEXT PRIMARY KEY, pid INTEGER, host TEXT, "
            "version TEXT, started REAL, last_seen REAL, state TEXT, status TEXT)"
        )
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", [str(SCHEMA_VERSION)]
        )


def insert_events(db: sqlite_utils.Database, events: list[AuditEvent]) -> None:
    """Insert a batch of events and their findings in one transaction (plain executemany: the
    writer runs in the proxy process, and per-batch table introspection cost more than the
    insert itself)."""
    rows = [e.row() for e in events]
    findings = [
        (e.id, e.ts, f.type, f.category, f.detector, f.rule, f.value_hash)
        for e in events for f in e.findings
    ]  # fmt: skip
    with db.conn:
        db.conn.executemany(_INSERT_EVENT, [tuple(r[c] for c in EVENT_COLUMNS) for r in rows])
        if findings:
            db.conn.executemany(_INSERT_FINDING, findings)


EVENT_COLUMNS = tuple(f.name for f in fields(AuditEvent))
FINDING_FIELDS = tuple(f.name for f in fields(FindingRecord))
_INSERT_EVENT = (
    f"INSERT OR REPLACE INTO events ({', '.join(f'[{c}]' for c in EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)
_INSERT_FINDING = (
    "INSERT INTO findings (event_id, ts, type, category, detector, rule, value_hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def recent(
    db: sqlite_utils.Database, limit: int = 20, after_ts: float = 0.0
) -> list[dict[str, Any]]:
    """The newest events (after `after_ts`), oldest first."""
    sql = "SELECT * FROM events WHERE ts > ? ORDER BY ts DESC LIMIT ?"
    rows = [dict(r) for r in db.query(sql, [after_ts, limit])]
    return list(reversed(rows))


def iter_events(db: sqlite_utils.Database, since_ts: float = 0.0) -> Iterator[dict[str, Any]]:
    yield from db.query("SELECT * FROM events WHERE ts >= ? ORDER BY ts", [since_ts])


def prune(db: sqlite_utils.Database, older_than_days: float) -> int:
    """Delete events older than the retention period; returns how many went."""
    cutoff = time.time() - older_than_days * 86400.0
    with db.conn:
        db.execute("DELETE FROM findings WHERE ts < ?", [cutoff])
        cursor = db.execute("DELETE FROM events WHERE ts < ?", [cutoff])
    return int(cursor.rowcount)


def beat(db: sqlite_utils.Database, started: float, status: dict[str, Any], state: str) -> None:
    """Upsert this process's heartbeat row: the TUI's sign that the proxy is alive."""
    pid, host = os.getpid(), socket.gethostname()
    row = (f"{host}:{pid}", pid, host, __version__, started, time.time(), state,
           json.dumps(status, ensure_ascii=False, default=str))  # fmt: skip
    with db.conn:
        db.execute("INSERT OR REPLACE INTO heartbeat VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)


class AuditWriter:
    """Batches events to the store on a background thread; `close()` flushes everything queued.

    Every `HEARTBEAT_EVERY_S` it also upserts a heartbeat row carrying `status` (set by the owner:
    detectors, classifier device, local model health).
    """

    def __init__(
        self, path: Path, batch: int = 500, interval: float = 0.2, retention_days: float = 0.0
    ):
        self.path = path
        self.batch = batch
        self.interval = interval
        self.retention_days = retention_days
        self._pruned_at = 0.0
        self.errors = 0
        self.last_error = ""
        self.status: dict[str, Any] = {}
        self._started = time.time()
        self._beat_at = 0.0
        open_store(path).conn.close()  # fail now, clearly, if the file is unusable
        # A deque the writer drains every `interval` (or sooner once `batch` events wait): no
        # lock or wake-up per event on the proxy's event loop, one transaction per drain.
        self._pending: deque[AuditEvent] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="dlp-audit", daemon=True)
        self._thread.start()

    def record(self, event: AuditEvent) -> None:
        self._pending.append(event)
        if len(self._pending) >= self.batch:
            self._wake.set()

    def close(self, timeout: float = 30.0) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        db = open_store(self.path)
        stopping = False
        while not stopping:
            self._wake.wait(self.interval)
            self._wake.clear()
            stopping = self._stopping  # read before draining: nothing recorded before close waits
            while self._pending:
                count = min(self.batch, len(self._pending))
                self._flush(db, [self._pending.popleft() for _ in range(count)])
            self._apply_retention(db)
            self._heartbeat(db, "stopped" if stopping else "running")
        db.conn.close()

    def _heartbeat(self, db: sqlite_utils.Database, state: str) -> None:
        now = time.monotonic()
        if state == "running" and now - self._beat_at < HEARTBEAT_EVERY_S:
            return
        self._beat_at = now
        try:
            beat(db, self._started, {**self.status, "undelivered": self.errors}, state)
        except sqlite3.Error as exc:  # a busy store: the next beat tries again
            self.last_error = f"heartbeat: {exc}"

    def _apply_retention(self, db: sqlite_utils.Database) -> None:
        """Delete events past the retention period, at most once an hour (0 keeps everything)."""
        now = time.monotonic()
        if self.retention_days <= 0 or (self._pruned_at and now - self._pruned_at < 3600):
            return
        self._pruned_at = now
        try:
            prune(db, self.retention_days)
        except sqlite3.Error as exc:
            self.last_error = f"retention: {exc}"

    def _flush(self, db: sqlite_utils.Database, events: list[AuditEvent]) -> None:
        for attempt in range(5):
            try:
                insert_events(db, events)
                return
            except sqlite3.Error as exc:  # locked by a reader: retry briefly
                self.last_error = str(exc)
                time.sleep(0.05 * (attempt + 1))
        self._spill(events)

    def _spill(self, events: list[AuditEvent]) -> None:
        """Events the store refused go to `<db>.undelivered.jsonl` beside it: nothing is lost."""
        self.errors += len(events)
        spill = self.path.with_name(self.path.name + ".undelivered.jsonl")
        with spill.open("a", encoding="utf-8") as out:
            for e in events:
                out.write(json.dumps(e.row(), ensure_ascii=False) + "\n")


def audit_salt(db: Path) -> bytes:
    """A per-installation salt for value hashes, kept beside the audit store (0600)."""
    path = db.with_name(db.name + ".salt")
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(value)
    return value
