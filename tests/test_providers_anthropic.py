"""Anthropic Messages API and Claude in the browser."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import anthropic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from dlpproxy.errors import BodyError
from dlpproxy.providers import Request, UnknownShape, stream_from_openai
from dlpproxy.providers.anthropic import AnthropicAdapter
from dlpproxy.providers.claude_web import ClaudeWebAdapter
from tests.support.chunks import chunk

try:  # anthropic 2.x talks through its own fork of httpx
    import httpx2 as sdk_http
except ImportError:
    import httpx as sdk_http  # type: ignore[no-redef]

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
MESSAGE = "Blocked by dlpproxy: the prompt contains a customer e-mail address. Incident inc-51c0."
ADAPTER = AnthropicAdapter()
WEB = ClaudeWebAdapter()
WEB_PATH = "/api/organizations/4f1e2d3c/chat_conversations/9a8b7c6d/completion"
EVENT = TypeAdapter(RawMessageStreamEvent)


def messages_request(**changes) -> Request:
    doc = json.loads((FIXTURES / "anthropic.json").read_text()) | changes
    return Request("POST", "api.anthropic.com", "/v1/messages", (), json.dumps(doc).encode(),
                   "application/json")  # fmt: skip


def web_request(**changes) -> Request:
    doc = json.loads((FIXTURES / "claude_web.json").read_text()) | changes
    return Request("POST", "claude.ai", WEB_PATH, (), json.dumps(doc).encode(), "application/json")


def sse_events(body: bytes) -> list[tuple[str, dict]]:
    """(event name, data) for each event of an SSE body."""
    out = []
    for block in body.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def sdk_client() -> anthropic.Anthropic:
    def handle(request: sdk_http.Request) -> sdk_http.Response:
        req = Request(request.method, request.url.host, request.url.raw_path.decode(),
                      tuple(request.headers.items()), request.content,
                      request.headers.get("content-type", ""))  # fmt: skip
        answer = ADAPTER.block(req, ADAPTER.extract(req), MESSAGE, "inc-51c0")
        return sdk_http.Response(answer.status, headers=list(answer.headers), content=answer.body)

    client = sdk_http.Client(transport=sdk_http.MockTransport(handle))
    return anthropic.Anthropic(api_key="sk-ant-test", http_client=client)


def test_anthropic_adapter_matches_v1_messages():
    assert ADAPTER.matches(messages_request())


def test_anthropic_adapter_ignores_token_counting():
    req = messages_request()
    assert not ADAPTER.matches(Request("POST", req.host, "/v1/messages/count_tokens", (), req.body))


def test_anthropic_extracts_system_documents_tool_use_and_tool_results():
    segments = ADAPTER.extract(messages_request()).prompt.segments
    assert [s.where for s in segments] == [
        "system[0].text",
        "messages[0].content[0].source.data",
        "messages[0].content[1].text",
        "messages[1].content[0].text",
        "messages[1].content[1].input.query",
        "messages[2].content[0].content[0].text",
        "messages[2].content[1].text",
    ]


def test_anthropic_extracts_a_string_system_prompt():
    segments = ADAPTER.extract(messages_request(system="Answer in French.")).prompt.segments
    assert (segments[0].where, segments[0].text) == ("system", "Answer in French.")


def test_anthropic_extracts_base64_text_document_decoded():
    data = base64.b64encode(b"name,email\nAna,ana@example.org\n").decode()
    source = {"type": "base64", "media_type": "text/csv", "data": data}
    doc = {"type": "document", "source": source}
    req = messages_request(messages=[{"role": "user", "content": [doc]}], system=None)
    segment = ADAPTER.extract(req).prompt.segments[0]
    assert (segment.where, segment.text) == (
        "messages[0].content[0].source.data",
        "name,email\nAna,ana@example.org\n",
    )


def test_anthropic_rewrite_of_base64_document_re_encodes_it():
    data = base64.b64encode(b"call me at ana@example.org").decode()
    source = {"type": "base64", "media_type": "text/plain", "data": data}
    req = messages_request(
        messages=[{"role": "user", "content": [{"type": "document", "source": source}]}]
    )
    new = json.loads(ADAPTER.rewrite(req, {1: "call me at [EMAIL_1]"}))
    assert (
        base64.b64decode(new["messages"][0]["content"][0]["source"]["data"])
        == b"call me at [EMAIL_1]"
    )


def test_anthropic_rewrite_replaces_a_tool_result_and_keeps_the_rest():
    req = messages_request()
    new = json.loads(ADAPTER.rewrite(req, {5: "Template [ID_1]: notice period 30 days."}))
    expected = json.loads(req.body)
    expected["messages"][2]["content"][0]["content"][0]["text"] = (
        "Template [ID_1]: notice period 30 days."
    )
    assert new == expected


def test_anthropic_block_answer_validates_as_a_message():
    req = messages_request()
    answer = ADAPTER.block(req, ADAPTER.extract(req), MESSAGE, "inc-51c0")
    message = Message.model_validate(json.loads(answer.body))
    assert (message.content[0].text, message.stop_reason) == (MESSAGE, "end_turn")


def test_anthropic_streamed_block_follows_the_event_sequence():
    req = messages_request(stream=True)
    answer = ADAPTER.block(req, ADAPTER.extract(req), MESSAGE, "inc-51c0")
    names = [name for name, _ in sse_events(answer.body)]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_anthropic_streamed_block_events_validate_one_by_one():
    req = messages_request(stream=True)
    answer = ADAPTER.block(req, ADAPTER.extract(req), MESSAGE, "inc-51c0")
    events = [
        EVENT.validate_python(data) for name, data in sse_events(answer.body) if name != "ping"
    ]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == MESSAGE


def test_anthropic_sdk_reads_the_block_answer():
    reply = sdk_client().messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content[0].text == MESSAGE


def test_anthropic_sdk_streams_the_block_answer():
    with sdk_client().messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == MESSAGE


def test_anthropic_missing_messages_is_an_unknown_shape():
    with pytest.raises(BodyError, match="anthropic: unknown body shape"):
        ADAPTER.extract(messages_request(messages=None))


def test_anthropic_to_openai_turns_tool_results_into_tool_messages():
    chat = ADAPTER.to_openai(messages_request())
    assert chat["messages"][-2] == {
        "role": "tool",
        "tool_call_id": "toolu_01A",
        "content": "Template SUP-7: notice period 30 days.",
    }


def test_anthropic_to_openai_keeps_system_and_max_tokens():
    chat = ADAPTER.to_openai(messages_request())
    assert chat["messages"][0] == {
        "role": "system",
        "content": "You are a careful legal assistant for Northwind GmbH.",
    }
    assert chat["max_tokens"] == 1024


def test_anthropic_from_openai_maps_length_to_max_tokens():
    choice = {"index": 0, "finish_reason": "length", "message": {"content": "Partial"}}
    completion = {"id": "c1", "model": "local", "choices": [choice]}
    answer = ADAPTER.from_openai(completion, messages_request())
    message = Message.model_validate(json.loads(answer.body))
    assert (message.content[0].text, message.stop_reason) == ("Partial", "max_tokens")


def test_claude_web_adapter_matches_the_completion_endpoint():
    assert WEB.matches(web_request())


def test_claude_web_adapter_ignores_conversation_listing():
    req = web_request()
    assert not WEB.matches(
        Request("POST", "claude.ai", "/api/organizations/4f1e/chat_conversations", (), req.body)
    )


def test_claude_web_extracts_prompt_and_attachment_text():
    segments = WEB.extract(web_request()).prompt.segments
    assert [(s.where, s.text) for s in segments] == [
        ("prompt", "Turn these meeting notes into action items."),
        (
            "attachments[0].extracted_content",
            "Standup 20 Nov: Priya ships the billing migration Friday; "
            "Tom to rotate the staging DB password.",
        ),
    ]


def test_claude_web_rewrite_replaces_attachment_text_only():
    req = web_request()
    new = json.loads(WEB.rewrite(req, {1: "[REDACTED]"}))
    expected = json.loads(req.body)
    expected["attachments"][0]["extracted_content"] = "[REDACTED]"
    assert new == expected


def test_claude_web_block_in_messages_mode_streams_message_events():
    req = web_request()
    answer = WEB.block(req, WEB.extract(req), MESSAGE, "inc-51c0")
    events = [EVENT.validate_python(d) for name, d in sse_events(answer.body) if name != "ping"]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == MESSAGE


def test_claude_web_block_in_legacy_mode_streams_completion_events():
    req = web_request(rendering_mode="raw", model="claude-3-5-sonnet-20241022")
    answer = WEB.block(req, WEB.extract(req), MESSAGE, "inc-51c0")
    events = sse_events(answer.body)
    assert [(n, d["completion"], d["stop_reason"]) for n, d in events] == [
        ("completion", MESSAGE, None),
        ("completion", "", "stop_sequence"),
    ]


def test_claude_web_block_is_server_sent_events():
    req = web_request()
    answer = WEB.block(req, WEB.extract(req), MESSAGE, "inc-51c0")
    assert (answer.status, answer.header("content-type")) == (200, "text/event-stream")


def test_claude_web_to_openai_puts_attachments_before_the_prompt():
    chat = WEB.to_openai(web_request())
    assert chat["messages"][0]["content"].startswith("standup-2026-11-20.txt:\nStandup 20 Nov")
    assert chat["messages"][0]["content"].endswith(
        "\n\nTurn these meeting notes into action items."
    )


def test_local_model_stream_translates_to_valid_anthropic_events():
    base = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "llama"}
    chunks = [
        base | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        base | {"choices": [{"index": 0, "delta": {"content": "Bonjour"}, "finish_reason": None}]},
        base | {"choices": [{"index": 0, "delta": {"content": " !"}, "finish_reason": None}]},
        base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
    ]
    body = b"".join(stream_from_openai(ADAPTER, chunks, messages_request(stream=True)))
    events = [EVENT.validate_python(d) for name, d in sse_events(body) if name != "ping"]
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    stop = [e.delta.stop_reason for e in events if e.type == "message_delta"]
    assert (deltas, stop) == (["Bonjour", " !"], ["max_tokens"])


def test_claude_web_without_a_prompt_is_an_unknown_shape():
    with pytest.raises(UnknownShape, match="claude_web: unknown body shape"):
        WEB.extract(web_request(prompt=None))


def test_anthropic_tools_and_tool_choice_become_chat_function_tools() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = [{"name": "weather", "description": "Weather now", "input_schema": schema},
             {"type": "web_search_20250305", "name": "web_search"}]  # fmt: skip
    chat = ADAPTER.to_openai(messages_request(tools=tools, tool_choice={"type": "any"}))
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": "Weather now", "parameters": schema}}]  # fmt: skip
    assert chat["tool_choice"] == "required"
    one = ADAPTER.to_openai(
        messages_request(tools=tools[:1], tool_choice={"type": "tool", "name": "weather"})
    )
    assert one["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert "tools" not in ADAPTER.to_openai(messages_request())


def test_anthropic_stream_carries_streamed_tool_calls_as_tool_use_blocks():
    call = {"index": 0, "id": "call_7", "type": "function",
            "function": {"name": "weather", "arguments": '{"ci'}}  # fmt: skip
    chunks = [
        chunk({"role": "assistant", "content": "Checking."}),
        chunk({"tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Seoul"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    body = b"".join(stream_from_openai(ADAPTER, chunks, messages_request(stream=True)))
    events = [EVENT.validate_python(d) for name, d in sse_events(body) if name != "ping"]
    kinds = [(e.type, getattr(e, "index", None)) for e in events]
    assert kinds == [
        ("message_start", None), ("content_block_start", 0), ("content_block_delta", 0),
        ("content_block_stop", 0), ("content_block_start", 1), ("content_block_delta", 1),
        ("content_block_delta", 1), ("content_block_stop", 1), ("message_delta", None),
        ("message_stop", None),
    ]  # fmt: skip
    tool = events[4].content_block
    assert (tool.type, tool.id, tool.name) == ("tool_use", "call_7", "weather")
    partial = "".join(e.delta.partial_json for e in events[5:7])
    assert json.loads(partial) == {"city": "Seoul"}
    assert events[8].delta.stop_reason == "tool_use"
