"""ChatGPT in the browser: backend-api conversation requests and SSE block answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlpproxy.errors import BodyError
from dlpproxy.providers import Request, UnknownShape
from dlpproxy.providers.chatgpt_web import ChatGPTWebAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
MESSAGE = "Blocked by dlpproxy: customer e-mail domains in a query. Incident inc-c4d1."
ADAPTER = ChatGPTWebAdapter()


def web_request(
    path: str = "/backend-api/f/conversation", host: str = "chatgpt.com", **changes
) -> Request:
    doc = json.loads((FIXTURES / "chatgpt_web.json").read_text()) | changes
    return Request("POST", host, path, (("oai-device-id", "d1"),), json.dumps(doc).encode(),
                   "application/json")  # fmt: skip


def data_events(body: bytes) -> list[str]:
    return [block[6:] for block in body.decode().strip().split("\n\n")]


def test_chatgpt_adapter_matches_f_conversation():
    assert ADAPTER.matches(web_request())


def test_chatgpt_adapter_matches_classic_conversation_on_chat_openai_com():
    assert ADAPTER.matches(web_request("/backend-api/conversation", host="chat.openai.com"))


def test_chatgpt_adapter_ignores_conversation_history_reads():
    assert not ADAPTER.matches(web_request("/backend-api/conversations"))


def test_chatgpt_extracts_the_text_parts():
    segments = ADAPTER.extract(web_request()).prompt.segments
    assert [(s.where, s.text) for s in segments] == [
        (
            "messages[0].content.parts[0]",
            "Fix this query, it times out:\nSELECT * FROM orders o JOIN customers c "
            "ON c.id = o.customer_id WHERE c.email LIKE '%@fabrikam.com'",
        )
    ]


def test_chatgpt_always_answers_as_a_stream():
    assert ADAPTER.extract(web_request()).stream is True


def test_chatgpt_notes_image_pointers_in_multimodal_parts():
    image = {
        "content_type": "image_asset_pointer",
        "asset_pointer": "file-service://file-9XyZ",
        "size_bytes": 48213,
    }
    content = {"content_type": "multimodal_text", "parts": [image, "what does this chart show?"]}
    message = {"id": "aaa1", "author": {"role": "user"}, "content": content}
    extracted = ADAPTER.extract(web_request(messages=[message]))
    assert [s.where for s in extracted.prompt.segments] == ["messages[0].content.parts[1]"]
    assert [u.reason for u in extracted.unscanned] == ["image_asset_pointer: not scanned"]


def test_chatgpt_rewrite_replaces_the_part_and_keeps_metadata():
    req = web_request()
    new = json.loads(ADAPTER.rewrite(req, {0: "Fix this query: [SQL_1]"}))
    expected = json.loads(req.body)
    expected["messages"][0]["content"]["parts"][0] = "Fix this query: [SQL_1]"
    assert new == expected


def test_chatgpt_block_is_sse_ending_with_done():
    req = web_request()
    answer = ADAPTER.block(req, ADAPTER.extract(req), MESSAGE, "inc-c4d1")
    assert answer.header("content-type") == "text/event-stream"
    assert data_events(answer.body)[-1] == "[DONE]"


def test_chatgpt_block_message_snapshot_holds_our_text_and_conversation():
    req = web_request()
    answer = ADAPTER.block(req, ADAPTER.extract(req), MESSAGE, "inc-c4d1")
    last = json.loads(data_events(answer.body)[-2])
    assert last["conversation_id"] == "6741f0c2-8d4e-8008-b1a2-3c4d5e6f7a8b"
    assert last["message"]["content"] == {"content_type": "text", "parts": [MESSAGE]}
    assert (last["message"]["status"], last["message"]["end_turn"]) == (
        "finished_successfully",
        True,
    )


def test_chatgpt_block_answer_replies_to_the_users_message():
    req = web_request()
    answer = ADAPTER.block(req, ADAPTER.extract(req), MESSAGE, "inc-c4d1")
    last = json.loads(data_events(answer.body)[-2])
    assert last["message"]["metadata"]["parent_id"] == "aaa2c7f1-5b8e-4d0e-9a3c-1f2e3d4c5b6a"


def test_chatgpt_streamed_snapshots_grow_with_each_chunk():
    translator = ADAPTER.stream_translator(web_request())
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": "Use "}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "an index."}, "finish_reason": "stop"}]},
    ]
    body = b"".join(translator.feed(c) for c in chunks) + translator.finish()
    snapshots = [json.loads(e)["message"]["content"]["parts"][0] for e in data_events(body)[:-1]]
    assert snapshots == ["Use ", "Use an index."]


def test_chatgpt_truncated_body_is_a_body_error():
    req = Request(
        "POST",
        "chatgpt.com",
        "/backend-api/f/conversation",
        (),
        b'{"action":"next","messages":[',
        "application/json",
    )
    with pytest.raises(BodyError, match="chatgpt_web: truncated JSON body"):
        ADAPTER.extract(req)


def test_chatgpt_to_openai_is_the_users_turn_streamed():
    chat = ADAPTER.to_openai(web_request())
    assert chat["messages"][0]["role"] == "user"
    assert chat["messages"][0]["content"].startswith("Fix this query, it times out:")
    assert chat["stream"] is True


def bare_request(**doc: str) -> Request:
    body = json.dumps(doc | {"conversation_id": "c1", "model": "auto"}).encode()
    return Request(
        "POST", "chatgpt.com", "/backend-api/f/conversation", (), body, "application/json"
    )


def test_chatgpt_regenerate_without_messages_has_no_text():
    assert ADAPTER.extract(bare_request(action="variant")).prompt.segments == ()


def test_chatgpt_next_without_messages_is_an_unknown_shape():
    with pytest.raises(UnknownShape, match="chatgpt_web: unknown body shape"):
        ADAPTER.extract(bare_request(action="next"))
