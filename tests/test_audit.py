"""The audit store: events written by the batching writer, nothing raw stored, exports, errors."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dlpproxy.audit import AuditError, AuditEvent, AuditWriter, event_for, open_store
from dlpproxy.audit.export import as_cef
from dlpproxy.audit.store import SCHEMA_VERSION, prune, recent
from dlpproxy.policy import Decision
from dlpproxy.types import Finding, Prompt, ScanResult

KEY = "AKIAZ7QRST2VWX3YB4CD"
EMAIL = "jiwoo.park@example-corp.co.kr"
TEXT = f"deploy with {KEY} and mail {EMAIL} please"


def planted_event(**context: str | int) -> AuditEvent:
    k, e = TEXT.index(KEY), TEXT.index(EMAIL)
    findings = (
        Finding(k, k + len(KEY), "aws_access_key", "secret", "secrets", 1.0, "critical", "aws"),
        Finding(e, e + len(EMAIL), "email", "pii", "pii", 0.9, "medium", "email"),
    )
    decision = Decision("block", "block-secrets", findings, "blocked", "", ("secret -> block",))
    result = ScanResult(findings, 3.2, ("secrets", "pii"))
    return event_for(Prompt.of_text(TEXT), result, decision, salt=b"s", **context)


def test_event_holds_masked_excerpts_and_hashes_not_values() -> None:
    event = planted_event(user="alice")
    assert event.categories == ("pii", "secret")
    assert KEY not in json.dumps(event.row()) and EMAIL not in json.dumps(event.row())
    assert event.findings[0].excerpt.startswith("deploy with AK")
    assert "**" in event.findings[1].excerpt


def test_row_holds_every_field_of_the_event_and_of_its_findings() -> None:
    event = planted_event(user="alice", host="api.openai.com", request_bytes=812)
    row = event.row()
    assert row == {
        **dataclasses.asdict(event),
        "categories": "pii,secret",
        "findings": json.dumps([dataclasses.asdict(f) for f in event.findings], ensure_ascii=False),
    }
    assert json.loads(row["findings"])[1]["type"] == "email"


def test_excerpt_context_hides_a_neighbouring_finding() -> None:
    text = f"{KEY} {EMAIL}"
    f1 = Finding(0, len(KEY), "aws_access_key", "secret", "secrets", 1.0)
    f2 = Finding(len(KEY) + 1, len(text), "email", "pii", "pii", 0.9)
    decision = Decision("block", "r", (f1, f2))
    event = event_for(Prompt.of_text(text), ScanResult((f1, f2), 1.0), decision, salt=b"")
    assert "example-corp" not in event.findings[0].excerpt
    assert "Z7QRST" not in event.findings[1].excerpt


def test_writer_flushes_everything_on_close_and_db_file_has_no_planted_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    writer = AuditWriter(path, batch=7, interval=0.01)
    for i in range(1000):
        writer.record(planted_event(user=f"user{i}"))
    writer.close()
    db = open_store(path)
    assert db["events"].count == 1000
    assert db["findings"].count == 2000
    db.conn.close()
    for file in tmp_path.iterdir():
        raw = file.read_bytes()
        assert KEY.encode() not in raw and EMAIL.encode() not in raw, file.name


def test_evidence_capture_stores_the_prompt_only_when_asked() -> None:
    assert planted_event().evidence == ""
    decision = Decision("monitor")
    event = event_for(Prompt.of_text(TEXT), None, decision, salt=b"", evidence=True)
    assert event.evidence == TEXT


def test_store_uses_wal(tmp_path: Path) -> None:
    db = open_store(tmp_path / "a.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = open_store(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", [str(SCHEMA_VERSION + 1)])
    db.conn.commit()
    db.conn.close()
    with pytest.raises(AuditError, match="written by a newer dlpproxy"):
        open_store(path)


def test_corrupt_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(AuditError, match="not a usable audit store"):
        open_store(path)


def test_prune_deletes_only_old_events(tmp_path: Path) -> None:
    db = open_store(tmp_path / "a.db")
    from dlpproxy.audit.store import insert_events

    insert_events(db, [AuditEvent("allow", ts=1000.0), AuditEvent("block")])
    assert prune(db, older_than_days=30) == 1
    assert [r["action"] for r in recent(db)] == ["block"]


def test_cef_line_escapes_separators() -> None:
    line = as_cef({"id": "x", "ts": 1.5, "action": "block", "rule": "a|b", "user": "o=k\\"})
    assert line.startswith("CEF:0|dlpproxy|dlpproxy|")
    assert "|block:a\\|b|prompt block|8|" in line
    assert "suser=o\\=k\\\\" in line


def test_audit_cli_tail_and_export(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    writer = AuditWriter(path)
    writer.record(planted_event(user="alice", host="api.openai.com"))
    writer.close()
    cmd = [sys.executable, "-m", "dlpproxy", "audit", "--db", str(path)]
    tail = subprocess.run([*cmd, "tail"], capture_output=True, text=True, check=True)
    assert "block   alice api.openai.com pii,secret aws_access_key,email" in tail.stdout
    export = subprocess.run([*cmd, "export", "--format", "jsonl"], capture_output=True, text=True)
    (record,) = [json.loads(line) for line in export.stdout.splitlines()]
    assert record["categories"] == ["pii", "secret"]
    assert KEY not in export.stdout
    cef = subprocess.run([*cmd, "export", "--format", "cef"], capture_output=True, text=True)
    assert cef.stdout.count("CEF:0|") == 1


def test_audit_cli_on_a_corrupt_db_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(b"garbage" * 500)
    done = subprocess.run(
        [sys.executable, "-m", "dlpproxy", "audit", "--db", str(path), "tail"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert "not a usable audit store" in done.stderr
    assert "Traceback" not in done.stderr


def test_locked_database_does_not_lose_events(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    writer = AuditWriter(path, interval=0.01)
    blocker = sqlite3.connect(str(path))
    blocker.execute("BEGIN EXCLUSIVE")
    writer.record(planted_event())
    import time

    time.sleep(0.3)
    blocker.rollback()
    blocker.close()
    writer.close()
    db = open_store(path)
    spill = tmp_path / "audit.db.undelivered.jsonl"
    stored = db["events"].count + (len(spill.read_text().splitlines()) if spill.exists() else 0)
    assert stored == 1


def test_writer_applies_the_retention_period(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    writer = AuditWriter(path, interval=0.01, retention_days=30)
    writer.record(AuditEvent("allow", ts=1000.0))
    writer.record(AuditEvent("block"))
    writer.close()
    writer = AuditWriter(path, interval=0.01, retention_days=30)
    writer.record(AuditEvent("monitor"))
    writer.close()
    assert sorted(r["action"] for r in recent(open_store(path))) == ["block", "monitor"]
