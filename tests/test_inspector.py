"""The inspector: a request to an AI service, from body to decision, with the real engine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from dlpproxy.engine import Engine
from dlpproxy.policy import load_policy
from dlpproxy.providers.base import Request
from dlpproxy.providers.openai_chat import OpenAIChatAdapter
from dlpproxy.proxy.history import ScanHistory
from dlpproxy.proxy.inspector import Inspector, Who
from dlpproxy.settings import Settings
from dlpproxy.types import Prompt, Segment

ROOT = Path(__file__).resolve().parent.parent
POLICY = load_policy(ROOT / "rules" / "policy.yaml")
ADAPTER = OpenAIChatAdapter()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(Settings(detectors=("pii", "keywords")))


def chat(*messages: str, stream: bool = False) -> Request:
    body = {
        "model": "gpt-4o",
        "stream": stream,
        "messages": [{"role": "user", "content": m} for m in messages],
    }
    return Request("POST", "api.openai.com", "/v1/chat/completions",
                   (("content-type", "application/json"),), json.dumps(body).encode(),
                   "application/json")  # fmt: skip


def inspect(engine: Engine, req: Request, inspector: Inspector | None = None):  # type: ignore[no-untyped-def]
    inspector = inspector or Inspector(engine, b"salt")
    return asyncio.run(inspector.inspect(req, ADAPTER, POLICY, Who(user="alice", service="openai")))


def test_clean_prompt_is_allowed_unchanged(engine: Engine) -> None:
    verdict = inspect(engine, chat("What is the capital of France?"))
    assert verdict.decision.action == "allow"
    assert verdict.body is None and verdict.answer is None


def test_marked_document_is_blocked_with_a_native_answer(engine: Engine) -> None:
    verdict = inspect(engine, chat("Summarise: CONFIDENTIAL board minutes ..."))
    assert verdict.decision.action == "block"
    assert verdict.answer is not None
    text = verdict.answer.body.decode()
    assert verdict.event.id in text
    assert "confidential marking" in text


def test_email_is_redacted_in_the_body_and_the_map_restores_it(engine: Engine) -> None:
    verdict = inspect(engine, chat("Write to jiwoo.park@example-corp.co.kr about the invoice"))
    assert verdict.decision.action == "redact"
    sent = json.loads(verdict.body or b"")
    assert sent["messages"][0]["content"] == "Write to [EMAIL_1] about the invoice"
    assert verdict.placeholders is not None
    assert verdict.placeholders.value_of("[EMAIL_1]") == "jiwoo.park@example-corp.co.kr"


def test_malformed_json_fails_closed_with_the_reason(engine: Engine) -> None:
    req = Request("POST", "api.openai.com", "/v1/chat/completions", (), b'{"messages": [',
                  "application/json")  # fmt: skip
    verdict = inspect(engine, req)
    assert (verdict.decision.action, verdict.decision.rule) == ("block", "fail-closed")
    assert verdict.answer is not None and verdict.answer.status == 403
    assert "unreadable body" in verdict.decision.reasons[0]


def test_audit_event_holds_no_raw_value(engine: Engine) -> None:
    verdict = inspect(engine, chat("call 010-2345-6789 or mail jiwoo.park@example-corp.co.kr"))
    row = json.dumps(verdict.event.row(), ensure_ascii=False)
    assert "010-2345-6789" not in row and "jiwoo.park@example-corp.co.kr" not in row
    assert verdict.event.user == "alice"


def test_history_scans_only_new_segments(engine: Engine) -> None:
    history = ScanHistory(min_chars=1)
    first = "A long first message that the client will resend on every turn of the chat."
    prompt1 = Prompt((Segment(first),))
    prompt2 = Prompt((Segment(first), Segment("and mail jiwoo.park@example-corp.co.kr")))
    asyncio.run(history.scan(engine, prompt1))
    result = asyncio.run(history.scan(engine, prompt2))
    assert (history.hits, history.misses) == (1, 2)
    assert [(f.segment, f.type) for f in result.findings] == [(1, "email")]


def test_history_keeps_no_segment_shorter_than_it_looks_up(engine: Engine) -> None:
    history = ScanHistory(min_chars=64)
    long_text = "A long first message that the client will resend on every turn of the chat."
    prompt = Prompt((Segment("ok"), Segment(long_text)))
    asyncio.run(history.scan(engine, prompt))
    asyncio.run(history.scan(engine, prompt))
    assert history.remembered() == 1  # the long segment only
    assert (history.hits, history.misses) == (1, 3)


def test_history_remembers_clean_segments_in_a_fixed_table(engine: Engine) -> None:
    """Clean segments take no memory as they come (a newcomer may take a slot's place: then
    that segment is scanned again); segments with findings keep them in a bounded LRU."""
    history = ScanHistory(capacity=2, min_chars=1, clean_slots=4)
    clean = [Prompt((Segment(f"clean message number {n}"),)) for n in range(40)]
    for prompt in clean:
        asyncio.run(history.scan(engine, prompt))
    assert history.remembered() <= 4
    before = history.hits
    asyncio.run(history.scan(engine, clean[-1]))
    assert history.hits == before + 1  # the latest is still there
    mails = [Prompt((Segment(f"mail user{n}@example-corp.com"),)) for n in range(3)]
    for prompt in mails:
        asyncio.run(history.scan(engine, prompt))
    again = asyncio.run(history.scan(engine, mails[-1]))
    assert [f.type for f in again.findings] == ["email"]
    assert history.remembered() <= 4 + 2


def test_history_table_size_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        ScanHistory(clean_slots=1000)
