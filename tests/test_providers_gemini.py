"""Gemini generateContent and streamGenerateContent."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dlpproxy.errors import BodyError
from dlpproxy.providers import Request, stream_from_openai
from dlpproxy.providers.gemini import GeminiAdapter
from tests.support.chunks import chunk

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
MESSAGE = "Blocked by dlpproxy: the data contains customer records. Incident inc-0b9e."
ADAPTER = GeminiAdapter()
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def gemini_request(path: str = GENERATE, **changes) -> Request:
    doc = json.loads((FIXTURES / "gemini.json").read_text()) | changes
    return Request("POST", "generativelanguage.googleapis.com", path, (("x-goog-api-key", "k"),),
                   json.dumps(doc).encode(), "application/json")  # fmt: skip


def blocked(req: Request):
    return ADAPTER.block(req, ADAPTER.extract(req), MESSAGE, "inc-0b9e")


def test_gemini_adapter_matches_generate_content():
    assert ADAPTER.matches(gemini_request())


def test_gemini_adapter_matches_stream_generate_content_with_alt_sse():
    assert ADAPTER.matches(gemini_request(STREAM + "?alt=sse"))


def test_gemini_adapter_matches_vertex_publisher_models():
    path = (
        "/v1/projects/acme/locations/europe-west4/publishers/google/models/"
        "gemini-2.5-pro:generateContent"
    )
    assert ADAPTER.matches(gemini_request(path))


def test_gemini_adapter_ignores_count_tokens():
    assert not ADAPTER.matches(gemini_request("/v1beta/models/gemini-2.5-flash:countTokens"))


def test_gemini_model_comes_from_the_path():
    assert ADAPTER.extract(gemini_request()).model == "gemini-2.5-flash"


def test_gemini_stream_flag_comes_from_the_method_name():
    assert ADAPTER.extract(gemini_request(STREAM)).stream is True


def test_gemini_extracts_system_instruction_parts_and_inline_csv():
    segments = ADAPTER.extract(gemini_request()).prompt.segments
    assert [(s.where, s.text) for s in segments] == [
        ("systemInstruction.parts[0].text", "You are a data analyst at Contoso Retail."),
        ("contents[0].parts[0].text", "Which region grew fastest? Data attached."),
        ("contents[0].parts[1].inlineData.data", "region,q3,q4\nNorth,1200,1450\nSouth,980,990\n"),
        ("contents[1].parts[0].text", "North grew fastest, by 20.8%."),
        ("contents[2].parts[0].text", "And the slowest?"),
    ]


def test_gemini_notes_inline_images_as_unscanned():
    image = {
        "inlineData": {
            "mimeType": "image/png",
            "data": base64.b64encode(b"\x89PNG\r\n\x1a\n\0\0").decode(),
        }
    }
    req = gemini_request(contents=[{"role": "user", "parts": [image]}])
    assert [u.where for u in ADAPTER.extract(req).unscanned] == [
        "contents[0].parts[0].inlineData.data"
    ]


def test_gemini_rewrite_replaces_text_part_and_keeps_the_rest():
    req = gemini_request()
    new = json.loads(ADAPTER.rewrite(req, {4: "And the [REDACTED]?"}))
    expected = json.loads(req.body)
    expected["contents"][2]["parts"][0]["text"] = "And the [REDACTED]?"
    assert new == expected


def test_gemini_rewrite_of_inline_csv_re_encodes_base64():
    new = json.loads(ADAPTER.rewrite(gemini_request(), {2: "region,q3,q4\n[ROWS_1]\n"}))
    data = new["contents"][0]["parts"][1]["inlineData"]["data"]
    assert base64.b64decode(data) == b"region,q3,q4\n[ROWS_1]\n"


def test_gemini_block_answer_is_a_generate_content_response():
    doc = json.loads(blocked(gemini_request()).body)
    candidate = doc["candidates"][0]
    assert (candidate["content"], candidate["finishReason"]) == (
        {"parts": [{"text": MESSAGE}], "role": "model"},
        "STOP",
    )


def test_gemini_streamed_block_with_alt_sse_is_sse_data_events():
    answer = blocked(gemini_request(STREAM + "?alt=sse"))
    events = [json.loads(e[6:]) for e in answer.body.decode().split("\r\n\r\n") if e]
    texts = "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)
    assert (answer.header("content-type"), texts) == ("text/event-stream", MESSAGE)


def test_gemini_streamed_block_without_alt_sse_is_one_json_array():
    answer = blocked(gemini_request(STREAM))
    events = json.loads(answer.body)
    assert [e["candidates"][0].get("finishReason") for e in events] == [None, "STOP"]
    assert answer.header("content-type") == "application/json"


def test_gemini_contents_not_a_list_is_an_unknown_shape():
    with pytest.raises(BodyError, match="gemini: unknown body shape"):
        ADAPTER.extract(gemini_request(contents={"parts": [{"text": "hi"}]}))


def test_gemini_to_openai_maps_roles_system_and_config():
    chat = ADAPTER.to_openai(gemini_request())
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "user"]
    assert (chat["model"], chat["temperature"], chat["max_tokens"]) == (
        "gemini-2.5-flash",
        0.1,
        512,
    )


def test_gemini_from_openai_stream_emits_one_sse_event_per_text_chunk():
    translator = ADAPTER.stream_translator(gemini_request(STREAM + "?alt=sse"))
    chunks = [
        {
            "id": "c",
            "model": "local",
            "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
        },
        {
            "id": "c",
            "model": "local",
            "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}],
        },
        {
            "id": "c",
            "model": "local",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        },
    ]
    body = b"".join(translator.feed(c) for c in chunks) + translator.finish()
    events = [json.loads(e[6:]) for e in body.decode().split("\r\n\r\n") if e]
    assert [e["candidates"][0]["content"]["parts"][0]["text"] for e in events] == ["Hel", "lo", ""]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"


def test_gemini_function_declarations_become_chat_function_tools() -> None:
    params = {"type": "OBJECT", "properties": {"wafer": {"type": "STRING"}}}
    tools = [
        {
            "functionDeclarations": [
                {"name": "yield_of", "description": "Yield", "parameters": params}
            ]
        }
    ]
    config = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["yield_of"]}}
    chat = ADAPTER.to_openai(gemini_request(tools=tools, toolConfig=config))
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "yield_of", "description": "Yield", "parameters": params}}]  # fmt: skip
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "yield_of"}}
    auto = ADAPTER.to_openai(gemini_request(tools=tools))
    assert auto["tool_choice"] == "auto"


def test_gemini_stream_sends_streamed_tool_calls_as_a_function_call_part():
    call = {"index": 0, "id": "call_1", "function": {"name": "yield_of", "arguments": '{"waf'}}
    chunks = [
        chunk({"role": "assistant", "content": "Looking."}),
        chunk({"tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'er": "W-12"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    req = gemini_request(STREAM + "?alt=sse")
    body = b"".join(stream_from_openai(ADAPTER, chunks, req)).decode()
    docs = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    last = docs[-1]["candidates"][0]
    assert {"functionCall": {"name": "yield_of", "args": {"wafer": "W-12"}}} in last["content"][
        "parts"
    ]
    assert "finishReason" in last
