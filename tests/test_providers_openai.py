"""OpenAI Chat Completions, Azure OpenAI, OpenAI-compatible APIs and the Responses API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response as OpenAIResponse

from dlpproxy.errors import BodyError
from dlpproxy.providers import INCIDENT_HEADER, Request, stream_from_openai
from dlpproxy.providers.azure import AzureOpenAIAdapter
from dlpproxy.providers.compatible import OpenAICompatibleAdapter
from dlpproxy.providers.openai_chat import OpenAIChatAdapter
from dlpproxy.providers.openai_responses import OpenAIResponsesAdapter
from tests.support.chunks import chunk

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
MESSAGE = "Blocked by dlpproxy: the prompt contains an AWS access key. Incident inc-7f3a."
CHAT = OpenAIChatAdapter()
RESPONSES = OpenAIResponsesAdapter()


def chat_request(doc: dict | None = None, host: str = "api.openai.com", **overrides) -> Request:
    body = doc if doc is not None else json.loads((FIXTURES / "openai_chat.json").read_text())
    fields = {"method": "POST", "host": host, "path": "/v1/chat/completions"}
    fields |= {"body": json.dumps(body).encode(), "content_type": "application/json"} | overrides
    return Request(**fields)


def responses_request(**changes) -> Request:
    doc = json.loads((FIXTURES / "openai_responses.json").read_text()) | changes
    return Request("POST", "api.openai.com", "/v1/responses", (), json.dumps(doc).encode(),
                   "application/json")  # fmt: skip


def sse_data(body: bytes) -> list[str]:
    return [line[6:] for line in body.decode().split("\n") if line.startswith("data: ")]


def sdk_handler(adapter, seen: list[Request]):
    """A stand-in upstream: the adapter reads what the SDK sent and answers with a block."""

    def handle(request: httpx.Request) -> httpx.Response:
        req = Request(request.method, request.url.host, request.url.raw_path.decode(),
                      tuple(request.headers.items()), request.content,
                      request.headers.get("content-type", ""))  # fmt: skip
        seen.append(req)
        answer = adapter.block(req, adapter.extract(req), MESSAGE, "inc-7f3a")
        return httpx.Response(answer.status, headers=list(answer.headers), content=answer.body)

    return handle


def sdk_client(adapter, seen: list[Request]) -> openai.OpenAI:
    transport = httpx.MockTransport(sdk_handler(adapter, seen))
    return openai.OpenAI(api_key="sk-test", http_client=httpx.Client(transport=transport))


def test_chat_adapter_matches_chat_completions_on_api_openai_com():
    assert CHAT.matches(chat_request())


def test_chat_adapter_ignores_other_openai_paths():
    assert not CHAT.matches(chat_request(path="/v1/embeddings"))


def test_chat_adapter_ignores_get_requests():
    assert not CHAT.matches(chat_request(method="GET"))


def test_chat_extracts_every_text_segment_with_its_place():
    wheres = [s.where for s in CHAT.extract(chat_request()).prompt.segments]
    assert wheres == [
        "messages[0].content",
        "messages[1].content",
        "messages[2].tool_calls[0].function.arguments",
        "messages[3].content",
        "messages[4].content[0].text",
        "messages[4].content[2].text",
    ]


def test_chat_extracts_tool_result_text():
    texts = [s.text for s in CHAT.extract(chat_request()).prompt.segments]
    assert texts[3] == "Customer reports double charge of EUR 1,240.00 on card ending 4242."


def test_chat_notes_image_parts_as_unscanned():
    unscanned = CHAT.extract(chat_request()).unscanned
    assert [(u.where, u.reason) for u in unscanned] == [
        ("messages[4].content[1]", "image_url: images and audio are not scanned")
    ]


def test_chat_reports_model_and_stream_flag():
    doc = json.loads((FIXTURES / "openai_chat.json").read_text()) | {"stream": True}
    extracted = CHAT.extract(chat_request(doc))
    assert (extracted.model, extracted.stream) == ("gpt-4o-mini", True)


def test_chat_rewrite_replaces_one_segment_and_keeps_the_rest():
    req = chat_request()
    new = json.loads(CHAT.rewrite(req, {1: "Summarise the ticket from [EMAIL_1]."}))
    expected = json.loads(req.body)
    expected["messages"][1]["content"] = "Summarise the ticket from [EMAIL_1]."
    assert new == expected


def test_chat_rewrite_of_a_content_part_touches_only_that_part():
    req = chat_request()
    new = json.loads(CHAT.rewrite(req, {5: "[REDACTED]"}))
    assert new["messages"][4]["content"][2] == {"type": "text", "text": "[REDACTED]"}
    assert new["messages"][4]["content"][1] == json.loads(req.body)["messages"][4]["content"][1]


def test_chat_rewrite_of_unknown_segment_is_a_body_error():
    with pytest.raises(BodyError, match="no segment 9"):
        CHAT.rewrite(chat_request(), {9: "x"})


def test_chat_block_answer_is_a_valid_chat_completion():
    req = chat_request()
    answer = CHAT.block(req, CHAT.extract(req), MESSAGE, "inc-7f3a")
    completion = ChatCompletion.model_validate(json.loads(answer.body))
    assert completion.choices[0].message.content == MESSAGE


def test_chat_block_answer_carries_the_incident_header():
    req = chat_request()
    answer = CHAT.block(req, CHAT.extract(req), MESSAGE, "inc-7f3a")
    assert answer.header(INCIDENT_HEADER) == "inc-7f3a"


def test_chat_streamed_block_parses_chunk_by_chunk_and_ends_with_done():
    doc = json.loads((FIXTURES / "openai_chat.json").read_text()) | {"stream": True}
    req = chat_request(doc)
    answer = CHAT.block(req, CHAT.extract(req), MESSAGE, "inc-7f3a")
    events = sse_data(answer.body)
    chunks = [ChatCompletionChunk.model_validate(json.loads(e)) for e in events[:-1]]
    assert events[-1] == "[DONE]"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == MESSAGE


def test_openai_sdk_reads_the_block_answer():
    seen: list[Request] = []
    client = sdk_client(CHAT, seen)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE"}]
    )
    assert reply.choices[0].message.content == MESSAGE


def test_openai_sdk_streams_the_block_answer():
    seen: list[Request] = []
    client = sdk_client(CHAT, seen)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == MESSAGE


def test_chat_extracts_what_the_openai_sdk_sends():
    seen: list[Request] = []
    sdk_client(CHAT, seen).chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi there"},
        ],
    )
    segments = CHAT.extract(seen[0]).prompt.segments
    assert [(s.where, s.text) for s in segments] == [
        ("messages[0].content", "Be brief."),
        ("messages[1].content", "hi there"),
    ]


def test_chat_truncated_json_is_a_body_error_saying_truncated():
    req = chat_request(body=b'{"model":"gpt-4o","messages":[{"role":"user","content":"hel')
    with pytest.raises(BodyError, match="openai_chat: truncated JSON body"):
        CHAT.extract(req)


def test_chat_malformed_json_is_a_body_error_with_line_and_column():
    req = chat_request(body=b'{"model": "gpt-4o",, "messages": []}')
    with pytest.raises(BodyError, match=r"malformed JSON body: .* at line 1 column 20"):
        CHAT.extract(req)


def test_chat_non_utf8_body_is_a_body_error_naming_the_byte():
    req = chat_request(body='{"messages":[{"role":"user","content":"café"}]}'.encode("latin-1"))
    with pytest.raises(BodyError, match=r"not UTF-8 \(byte 0xe9 at offset 42\)"):
        CHAT.extract(req)


def test_chat_form_content_type_is_a_body_error():
    req = chat_request(content_type="application/x-www-form-urlencoded")
    with pytest.raises(BodyError, match="expected application/json, got"):
        CHAT.extract(req)


def test_chat_messages_that_are_not_a_list_are_an_unknown_shape():
    with pytest.raises(BodyError, match="unknown body shape"):
        CHAT.extract(chat_request({"model": "gpt-4o", "messages": "hello"}))


def test_chat_to_openai_is_the_request_itself():
    req = chat_request()
    assert CHAT.to_openai(req) == json.loads(req.body)


def test_azure_adapter_matches_deployment_paths():
    path = "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    assert AzureOpenAIAdapter().matches(chat_request(host="acme.openai.azure.com", path=path))


def test_azure_model_is_the_deployment_name():
    path = "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    req = chat_request(host="acme.openai.azure.com", path=path)
    assert AzureOpenAIAdapter().extract(req).model == "gpt4o-prod"


def test_compatible_adapter_matches_deepseek_path_without_v1():
    req = chat_request(host="api.deepseek.com", path="/chat/completions")
    assert OpenAICompatibleAdapter().matches(req)


def test_compatible_adapter_matches_groq_openai_prefix():
    req = chat_request(host="api.groq.com", path="/openai/v1/chat/completions")
    assert OpenAICompatibleAdapter().matches(req)


def test_compatible_adapter_ignores_model_listing():
    assert not OpenAICompatibleAdapter().matches(
        chat_request(host="openrouter.ai", path="/api/v1/models")
    )


def test_responses_adapter_matches_v1_responses():
    assert RESPONSES.matches(responses_request())


def test_responses_adapter_ignores_chat_completions():
    assert not RESPONSES.matches(chat_request())


def test_responses_extracts_instructions_items_and_tool_output():
    segments = RESPONSES.extract(responses_request()).prompt.segments
    assert [s.where for s in segments] == [
        "instructions",
        "input[0].content[0].text",
        "input[1].arguments",
        "input[2].output",
        "input[3].content",
    ]


def test_responses_extracts_plain_string_input():
    segments = RESPONSES.extract(responses_request(input="What is 2+2?")).prompt.segments
    assert [(s.where, s.text) for s in segments][-1] == ("input", "What is 2+2?")


def test_responses_rewrite_replaces_function_output_only():
    req = responses_request()
    new = json.loads(RESPONSES.rewrite(req, {3: "[REDACTED]"}))
    expected = json.loads(req.body)
    expected["input"][2]["output"] = "[REDACTED]"
    assert new == expected


def test_responses_block_answer_validates_as_a_response():
    req = responses_request()
    answer = RESPONSES.block(req, RESPONSES.extract(req), MESSAGE, "inc-7f3a")
    assert OpenAIResponse.model_validate(json.loads(answer.body)).output_text == MESSAGE


def test_openai_sdk_reads_the_responses_block_answer():
    reply = sdk_client(RESPONSES, []).responses.create(model="gpt-4.1", input="hello")
    assert reply.output_text == MESSAGE


def test_openai_sdk_streams_the_responses_block_answer():
    stream = sdk_client(RESPONSES, []).responses.create(model="gpt-4.1", input="hi", stream=True)
    events = list(stream)
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[-1].response.output_text == MESSAGE


def test_responses_to_openai_maps_instructions_tools_and_limits():
    chat = RESPONSES.to_openai(responses_request())
    assert chat["messages"][0] == {
        "role": "system",
        "content": "You review pull requests for the payments team.",
    }
    tool_output = "412 passed, 1 failed: test_refund_rounding"
    assert chat["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_a1",
        "content": tool_output,
    }
    assert (chat["model"], chat["max_tokens"]) == ("gpt-4.1", 800)


def test_responses_from_openai_keeps_tool_calls():
    completion = {
        "id": "chatcmpl-1", "created": 1, "model": "local",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "",
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "lookup", "arguments": "{\"q\": \"x\"}"}}]}}],
    }  # fmt: skip
    answer = RESPONSES.from_openai(completion, responses_request())
    parsed = OpenAIResponse.model_validate(json.loads(answer.body))
    assert [(o.type, getattr(o, "name", None)) for o in parsed.output] == [
        ("message", None),
        ("function_call", "lookup"),
    ]


def test_responses_function_tools_carry_over_and_hosted_tools_do_not() -> None:
    params = {"type": "object", "properties": {"sku": {"type": "string"}}}
    stock = {
        "type": "function",
        "name": "stock",
        "description": "Stock level",
        "parameters": params,
    }
    tools = [stock, {"type": "web_search"}]
    chat = RESPONSES.to_openai(responses_request(tools=tools, tool_choice="required"))
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "stock", "description": "Stock level", "parameters": params}}]  # fmt: skip
    assert chat["tool_choice"] == "required"
    named = RESPONSES.to_openai(
        responses_request(tools=tools, tool_choice={"type": "function", "name": "stock"})
    )
    assert named["tool_choice"] == {"type": "function", "function": {"name": "stock"}}


def test_responses_stream_carries_streamed_tool_calls_and_the_sdk_reads_them():
    call = {"index": 0, "id": "call_3", "type": "function",
            "function": {"name": "stock", "arguments": '{"sk'}}  # fmt: skip
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'u": "A-7"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    body = b"".join(stream_from_openai(RESPONSES, chunks, responses_request(stream=True)))

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = openai.OpenAI(
        api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(handle))
    )
    events = list(client.responses.create(model="gpt-4.1", input="hi", stream=True))
    completed = next(e for e in events if e.type == "response.completed").response
    calls = [item for item in completed.output if item.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("call_3", "stock", {"sku": "A-7"})
    ]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done[0].arguments == '{"sku": "A-7"}'
