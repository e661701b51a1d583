"""A small, fixed audit store for the console's tests and snapshots, written by the store API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlpproxy.audit.store import AuditEvent, FindingRecord, insert_events, open_store

T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC; the console's clock is pinned here in tests
# The shipped policy as of this console's tests, fixed so that edits to rules/policy.yaml do not
# move the rows the tests and snapshots look at.
POLICY = Path(__file__).resolve().parent / "fixtures" / "tui-policy.yaml"


def finding(category: str, kind: str, detector: str, rule: str, excerpt: str) -> FindingRecord:
    return FindingRecord(kind, category, detector, 10, 30, 0.97, "high", rule, excerpt,
                         f"h-{kind}")  # fmt: skip


KEY = finding(
    "secret", "aws_access_key_id", "secrets", "block-secrets", "id = AK****************CD"
)
MAIL = finding("pii", "email", "pii", "redact-contact-data", "remind ji****@example-corp.co.kr")
RRN = finding("pii", "kr_rrn", "pii", "block-national-ids", "RRN 900101-1******")
MARK = finding("confidential_marking", "confidential", "keywords", "monitor-confidential-words",
               "CONFIDENTIAL: Q3 plan")  # fmt: skip

# (seconds before T0, user, service, action, rule, findings)
EVENTS = [
    (3500, "kim", "openai", "allow", "", ()),
    (3000, "lee", "anthropic", "block", "block-secrets", (KEY,)),
    (2400, "park", "chatgpt", "redact", "redact-contact-data", (MAIL,)),
    (1800, "kim", "gemini", "block", "block-national-ids", (RRN, MAIL)),
    (1200, "choi", "openai", "monitor", "monitor-confidential-words", (MARK,)),
    (900, "lee", "openai", "allow", "", ()),
    (600, "park", "deepseek", "block", "block-secrets", (KEY,)),
    (300, "kim", "claude", "redact", "redact-contact-data", (MAIL,)),
    (120, "choi", "anthropic", "allow", "", ()),
    (60, "lee", "openai", "block", "block-secrets", (KEY, MAIL)),
]


def event(n: int, ago: float, user: str, service: str, action: str, rule: str,
          found: tuple[FindingRecord, ...]) -> AuditEvent:  # fmt: skip
    return AuditEvent(
        action=action, ts=T0 - ago, id=f"evt{n:013d}", user=user, client="10.1.2.3",
        host=f"api.{service}.com", service=service, path="/v1/chat/completions", rule=rule,
        reason="; ".join(f"{f.category}/{f.type} -> {action} ({rule})" for f in found),
        categories=tuple(sorted({f.category for f in found})), findings=found,
        prompt_hash="0" * 64, request_bytes=900, prompt_chars=420, scan_ms=2.0 + n * 1.5,
    )  # fmt: skip


def fill(path: Path) -> list[AuditEvent]:
    events = [event(n, *spec) for n, spec in enumerate(EVENTS)]
    db = open_store(path)
    insert_events(db, events)
    db.conn.close()
    return events


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times shown in UTC, so screens read the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def store(tmp_path: Path, utc: None) -> Path:
    path = tmp_path / "audit.db"
    fill(path)
    return path


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.read_text(encoding="utf-8"), encoding="utf-8")
    return path
