"""Reversible redaction: typed placeholders, one per value, restored in answers and streams."""

from __future__ import annotations

import json

from dlpproxy.enforce.placeholders import ConversationMaps, PlaceholderMap, StreamRestorer, redact
from dlpproxy.enforce.restore import SseRestorer, restore_json
from dlpproxy.types import Finding

EMAIL = "jiwoo.park@example-corp.co.kr"
PHONE = "010-2345-6789"


def spans(text: str, *values_types: tuple[str, str]) -> list[Finding]:
    out = []
    for value, kind in values_types:
        start = text.index(value)
        out.append(Finding(start, start + len(value), kind, "pii", "pii", 0.9))
    return out


def test_redact_uses_typed_numbered_placeholders() -> None:
    text = f"mail {EMAIL} or call {PHONE}"
    pmap = PlaceholderMap()
    out = redact(text, spans(text, (EMAIL, "email"), (PHONE, "phone")), pmap)
    assert out == "mail [EMAIL_1] or call [PHONE_1]"


def test_same_value_gets_the_same_placeholder_across_turns() -> None:
    maps = ConversationMaps()
    first = f"to {EMAIL}"
    second = f"again {EMAIL} and b@corp.io"
    assert redact(first, spans(first, (EMAIL, "email")), maps.get("conv")) == "to [EMAIL_1]"
    out = redact(second, spans(second, (EMAIL, "email"), ("b@corp.io", "email")), maps.get("conv"))
    assert out == "again [EMAIL_1] and [EMAIL_2]"


def test_overlapping_findings_become_one_placeholder() -> None:
    text = f"x {EMAIL} y"
    s = text.index(EMAIL)
    findings = [
        Finding(s, s + 10, "email", "pii", "a", 1),
        Finding(s + 5, s + len(EMAIL), "x", "pii", "b", 1),
    ]
    assert redact(text, findings, PlaceholderMap()) == "x [EMAIL_1] y"


def test_conversation_maps_drop_the_least_recently_used() -> None:
    maps = ConversationMaps(capacity=2)
    a = maps.get("a")
    maps.get("b")
    maps.get("a")
    maps.get("c")
    assert maps.get("a") is a
    assert len(maps._maps) == 2


def mapped() -> PlaceholderMap:
    pmap = PlaceholderMap()
    pmap.placeholder_for("email", EMAIL)
    pmap.placeholder_for("phone", PHONE)
    return pmap


def test_json_answer_is_restored_with_proper_escaping() -> None:
    pmap = PlaceholderMap()
    pmap.placeholder_for("secret", 'quote"back\\slash')
    body = json.dumps({"choices": [{"message": {"content": "value: [SECRET_1]"}}]}).encode()
    out = json.loads(restore_json(body, pmap))
    assert out["choices"][0]["message"]["content"] == 'value: quote"back\\slash'


def test_unknown_placeholders_are_left_alone() -> None:
    body = b'{"text": "[EMAIL_9] and [NOT A PLACEHOLDER]"}'
    assert json.loads(restore_json(body, mapped()))["text"] == "[EMAIL_9] and [NOT A PLACEHOLDER]"


def test_stream_restorer_holds_a_split_placeholder() -> None:
    r = StreamRestorer(mapped())
    assert r.feed("Write to [EMA") == "Write to "
    assert r.feed("IL_1] now [PH") == f"{EMAIL} now "
    assert r.flush() == "[PH"


def openai_chunk(text: str) -> bytes:
    event = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def contents(stream: bytes) -> str:
    out = []
    for block in stream.split(b"\n\n"):
        if block.startswith(b"data: {"):
            out.append(json.loads(block[6:])["choices"][0]["delta"].get("content", ""))
    return "".join(out)


def test_sse_stream_restores_a_placeholder_split_across_events_and_network_chunks() -> None:
    stream = openai_chunk("Mail [EM") + openai_chunk("AIL_1") + openai_chunk("] and call [PHONE_1]")
    stream += b"data: [DONE]\n\n"
    r = SseRestorer(mapped())
    out = b"".join(r.feed(stream[i : i + 7]) for i in range(0, len(stream), 7)) + r.flush()
    assert contents(out) == f"Mail {EMAIL} and call {PHONE}"
    assert out.endswith(b"data: [DONE]\n\n")


def test_sse_held_text_is_released_before_done() -> None:
    stream = openai_chunk("ends with [EMAIL") + b"data: [DONE]\n\n"
    r = SseRestorer(mapped())
    out = r.feed(stream) + r.flush()
    assert contents(out) == "ends with [EMAIL"
    assert out.endswith(b"data: [DONE]\n\n")


def test_sse_events_without_placeholders_pass_byte_for_byte() -> None:
    stream = b'event: ping\ndata: {"type": "ping"}\n\n' + openai_chunk("hello")
    r = SseRestorer(mapped())
    assert r.feed(stream) + r.flush() == stream


def test_anthropic_style_events_keep_their_event_lines() -> None:
    event = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "[PHONE_1]"},
    }
    raw = b"event: content_block_delta\ndata: " + json.dumps(event).encode() + b"\n\n"
    out = SseRestorer(mapped()).feed(raw)
    assert out.startswith(b"event: content_block_delta\ndata: ")
    assert json.loads(out.split(b"data: ", 1)[1])["delta"]["text"] == PHONE


def test_json_array_stream_restores_a_placeholder_split_across_elements() -> None:
    chunks = [{"candidates": [{"content": {"parts": [{"text": piece}]}}]}
              for piece in ("Write to [EMAI", "L_1] now", " and [PHO", "NE_1")]  # fmt: skip
    out = json.loads(restore_json(json.dumps(chunks).encode(), mapped()))
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in out)
    assert text == f"Write to {EMAIL} now and [PHONE_1"


def test_snapshot_stream_restores_each_snapshot_without_carrying_text() -> None:
    def snap(text: str) -> bytes:
        event = {"message": {"content": {"parts": [text]}}}
        return b"data: " + json.dumps(event).encode() + b"\n\n"

    full = "Dear [EMAIL_1], thanks"
    stream = b"".join(snap(full[:n]) for n in (9, 12, len(full))) + b"data: [DONE]\n\n"
    r = SseRestorer(mapped())
    out = r.feed(stream) + r.flush()
    parts = [json.loads(b[6:])["message"]["content"]["parts"][0]
             for b in out.split(b"\n\n") if b.startswith(b"data: {")]  # fmt: skip
    assert parts == ["Dear ", "Dear ", f"Dear {EMAIL}, thanks"]
