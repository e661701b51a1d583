"""Reroute: `answer_locally` against the real local model server and against broken ones.

The happy paths use the real llama-cpp-python server (tests/support); the failures use real
loopback servers that refuse, cut a stream midway or are not there at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from dlpproxy.enforce.reroute import Reroute, answer_locally
from dlpproxy.httpserver import HttpRequest, HttpResponse
from dlpproxy.localmodel.client import LocalModel
from dlpproxy.localmodel.config import LocalModelConfig
from dlpproxy.providers import BY_NAME
from dlpproxy.providers.base import Request
from tests.e2e.conftest import free_port
from tests.test_httpserver import serve as serve_on_loopback

BANNER = "[company model]"


def request(adapter: str, stream: bool) -> Request:
    text = "Summarise the quarterly plan."
    if adapter == "anthropic":
        doc: dict[str, Any] = {"model": "claude-x", "max_tokens": 40, "stream": stream,
                               "messages": [{"role": "user", "content": text}]}  # fmt: skip
        return Request("POST", "api.anthropic.com", "/v1/messages", (), json.dumps(doc).encode(),
                       "application/json")  # fmt: skip
    if adapter == "openai_responses":
        doc = {"model": "gpt-4.1", "input": text, "stream": stream, "max_output_tokens": 40}
        return Request("POST", "api.openai.com", "/v1/responses", (), json.dumps(doc).encode(),
                       "application/json")  # fmt: skip
    doc = {"model": "gpt-4o", "max_tokens": 40, "stream": stream,
           "messages": [{"role": "user", "content": text}]}  # fmt: skip
    return Request("POST", "api.openai.com", "/v1/chat/completions", (), json.dumps(doc).encode(),
                   "application/json")  # fmt: skip


def job(adapter_name: str, stream: bool, *urls: str, model: str = "tiny") -> Reroute:
    adapter = BY_NAME[adapter_name]
    req = request(adapter_name, stream)
    models = tuple(
        LocalModel(LocalModelConfig(name=f"m{i}", base_url=url, model=model,
                                    connect_timeout_s=2, first_token_timeout_s=20, timeout_s=30))
        for i, url in enumerate(urls)
    )  # fmt: skip
    return Reroute(adapter, req, adapter.extract(req), models, "0123456789abcdef", banner=BANNER)


async def body_of(answer: HttpResponse) -> bytes:
    if isinstance(answer.body, bytes | bytearray):
        return bytes(answer.body)
    return b"".join([chunk async for chunk in answer.body])


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.mark.parametrize("adapter", ["openai_chat", "openai_responses", "anthropic"])
def test_the_local_model_answers_in_the_callers_format(
    adapter: str, local_model_server: Any
) -> None:
    work = job(adapter, False, local_model_server.base_url, model=local_model_server.model)
    answer = run(answer_locally(work))
    doc = json.loads(run(body_of(answer)))
    text = {
        "openai_chat": lambda d: d["choices"][0]["message"]["content"],
        "openai_responses": lambda d: d["output"][0]["content"][0]["text"],
        "anthropic": lambda d: d["content"][0]["text"],
    }[adapter](doc)
    assert text.startswith(BANNER + "\n\n") and len(text) > len(BANNER) + 2
    assert not text[len(BANNER) + 2].isspace(), "the model's leading space follows the banner"
    assert dict(answer.headers)["x-dlpproxy-rerouted"] == "m0"
    assert work.ok and work.answered_by == "m0"


def test_a_stream_is_translated_chunk_by_chunk(local_model_server: Any) -> None:
    work = job("anthropic", True, local_model_server.base_url, model=local_model_server.model)

    async def go() -> list[bytes]:
        answer = await answer_locally(work)
        assert not isinstance(answer.body, bytes)
        return [chunk async for chunk in answer.body]

    chunks = run(go())
    events = [line for c in chunks for line in c.decode().splitlines() if line.startswith("event:")]
    assert events[0] == "event: message_start"
    assert events[-1] == "event: message_stop"
    assert events.count("event: content_block_delta") >= 3  # banner + the model's tokens
    deltas = [
        json.loads(line[6:])["delta"].get("text", "")
        for c in chunks for line in c.decode().splitlines()
        if line.startswith("data: ") and '"content_block_delta"' in line
    ]  # fmt: skip
    text = "".join(deltas)
    assert text.startswith(BANNER + "\n\n") and not text[len(BANNER) + 2].isspace()
    assert work.ok and "streamed" in work.outcome


def test_the_next_local_model_answers_when_the_first_is_down(local_model_server: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    work = job("openai_chat", False, dead, local_model_server.base_url,
               model=local_model_server.model)  # fmt: skip
    answer = run(answer_locally(work))
    assert answer.status == 200
    assert work.answered_by == "m1"


@pytest.mark.parametrize("stream", [False, True])
def test_no_local_model_fails_closed_with_our_message_in_the_callers_format(stream: bool) -> None:
    work = job("openai_chat", stream, f"http://127.0.0.1:{free_port()}/v1")
    answer = run(answer_locally(work))
    body = run(body_of(answer)).decode()
    assert "not available right now" in body and "0123456789abcdef" in body
    if stream:
        assert body.rstrip().endswith("data: [DONE]")
    else:
        assert json.loads(body)["object"] == "chat.completion"
    assert not work.ok and work.outcome.startswith("refused")
    assert dict(answer.headers)["x-dlpproxy-rerouted"] == "failed"


def serve(
    handler: Callable[[HttpRequest], Awaitable[HttpResponse]],
    test: Callable[[str], Awaitable[None]],
) -> None:
    """Run `test` against a loopback server answering with `handler` (its OpenAI base URL)."""

    async def on_base(url: str) -> None:
        await test(f"{url}/v1")

    serve_on_loopback(handler, on_base)


def chunk(text: str) -> bytes:
    delta = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    doc = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [delta]}  # fmt: skip
    return f"data: {json.dumps(doc)}\n\n".encode()


def test_a_stream_cut_midway_ends_with_a_note_and_a_proper_end() -> None:
    async def cut_short() -> AsyncIterator[bytes]:
        yield chunk("Hello")
        yield chunk(" there")
        raise ConnectionResetError("the model server died")

    async def handler(req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, (("content-type", "text/event-stream"),), cut_short())

    async def test(url: str) -> None:
        work = job("openai_chat", True, url)
        answer = await answer_locally(work)
        text = (await body_of(answer)).decode()
        assert "Hello" in text and "the company model stopped answering" in text
        assert text.rstrip().endswith("data: [DONE]")
        assert not work.ok and "broke off" in work.outcome
        assert work.answered_by == "m0"

    serve(handler, test)


def test_a_local_model_answering_malformed_json_fails_closed() -> None:
    async def handler(req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, (("content-type", "application/json"),), b'{"choices": [')

    async def test(url: str) -> None:
        work = job("anthropic", False, url)
        answer = await answer_locally(work)
        doc = json.loads(await body_of(answer))
        assert doc["type"] == "message"
        assert "not available right now" in doc["content"][0]["text"]
        assert not work.ok

    serve(handler, test)


def test_a_stream_closed_before_its_first_byte_still_closes_the_model_and_reports(
    local_model_server: Any,
) -> None:
    outcomes: list[str] = []
    work = job("openai_chat", True, local_model_server.base_url, model=local_model_server.model)
    work.on_done = lambda j: outcomes.append(j.outcome)

    async def go() -> None:
        answer = await answer_locally(work)
        body = answer.body
        assert not isinstance(body, bytes)
        await body.aclose()  # type: ignore[attr-defined]  # the client left at once

    run(go())
    assert outcomes and "client left before 'm0' was heard" in outcomes[0]
    assert not work.ok
