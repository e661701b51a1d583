"""The gateway's error paths: every one answers in the caller's format, and none sends the prompt
to the provider.

The real gateway runs against a recording stand-in provider on loopback; its policy reroutes
secrets to a local model at a port where nothing listens (the local model is down), so secret
prompts must fail closed. Bad keys, bad bodies, unknown paths and models, a provider that
hangs up, over-quota answers, a provider stream cut midway and a client that leaves midway are
each checked against what the provider received. Two more gateways use a local model that answers
broken JSON, or 404 for a model name it does not serve (a loopback server written for that: the
real model server never sends broken JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.test_sdks import INCIDENT, anthropic_messages, openai_chat
from tests.test_gateway_stack import (
    SECRET_PROMPT,
    MalformedLocalModel,
    Provider,
    RunningGateway,
    free_port,
    start_gateway,
)

LIMIT = 50_000
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


@pytest.fixture(autouse=True)
def provider_ok(provider: Provider) -> Iterator[None]:
    provider.mode = "ok"
    yield
    provider.mode = "ok"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("gateway-errors")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    running = start_gateway(folder, provider.base_url, dead, max_body_bytes=LIMIT)
    yield running
    running.stop()


def openai_error(answer: httpx.Response) -> dict[str, Any]:
    doc = answer.json()
    assert set(doc) == {"error"} and {"message", "type", "code"} <= set(doc["error"]), doc
    return dict(doc["error"])


def anthropic_error(answer: httpx.Response) -> dict[str, Any]:
    doc = answer.json()
    assert doc["type"] == "error" and {"type", "message"} <= set(doc["error"]), doc
    return dict(doc["error"])


CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
MESSAGES_BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64,
                 "messages": [{"role": "user", "content": SECRET_PROMPT}]}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
def test_local_model_down_fails_closed_in_the_callers_format(
    stream: bool, gw: RunningGateway, provider: Provider
) -> None:
    before = len(provider.received)
    oai, claude = gw.openai(), gw.anthropic()
    for answer in (openai_chat(oai, "gpt-4o-mini", SECRET_PROMPT, stream),
                   anthropic_messages(claude, SECRET_PROMPT, stream)):  # fmt: skip
        assert "not available right now" in answer
        assert "The prompt was not sent anywhere" in answer
        incident = INCIDENT.search(answer)
        assert incident, answer
        assert gw.event(incident.group(1))["action"] == "block"
    assert provider.since(before) == []


def test_embeddings_of_a_secret_are_refused_when_the_local_model_is_down(
    gw: RunningGateway, provider: Provider
) -> None:
    before = len(provider.received)
    body = {"model": "text-embedding-3-small", "input": ["fine", SECRET_PROMPT]}
    answer = gw.post("/v1/embeddings", body)
    assert answer.status_code == 403
    error = openai_error(answer)
    assert "may only be answered by the company's own model" in error["message"]
    assert error["incident_id"] == answer.headers["x-dlpproxy-incident"]
    assert (error["type"], error["code"]) == ("dlpproxy_blocked", "blocked_by_dlp")
    assert gw.event(error["incident_id"])["action"] == "block"
    assert provider.since(before) == []


def test_invalid_or_missing_key_is_401_in_each_format(gw: RunningGateway) -> None:
    oai = gw.openai(key="dlpgw-wrong")
    with pytest.raises(openai.AuthenticationError) as raised:
        openai_chat(oai, "gpt-4o-mini", "hello", False)
    assert "invalid or missing gateway key" in str(raised.value)
    claude = gw.anthropic(key="dlpgw-wrong")
    with pytest.raises(anthropic.AuthenticationError) as denied:
        anthropic_messages(claude, "hello", False)
    assert denied.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    missing = httpx.get(gw.base_url + "/models")
    assert missing.status_code == 401
    assert openai_error(missing)["code"] == "invalid_api_key"


def test_unknown_path_and_wrong_method_are_openai_errors(gw: RunningGateway) -> None:
    unknown = gw.post("/v1/completions", {"prompt": "x"})
    assert unknown.status_code == 404
    assert "/v1/chat/completions" in openai_error(unknown)["message"]
    wrong = httpx.get(gw.root + CHAT, headers={"authorization": f"Bearer {gw.key}"})
    assert wrong.status_code == 405
    assert "takes POST" in openai_error(wrong)["message"]


JSON = "application/json"
BAD_BODIES = [
    (CHAT, b'{"model": "gpt-4o-mini", "messages": [', JSON, 400, "malformed JSON"),
    (MESSAGES, b"[1, 2]", JSON, 400, "not a JSON object"),
    (CHAT, b"hello", "text/plain", 415, "expected content-type application/json"),
    (MESSAGES, json.dumps({**MESSAGES_BODY, "system": "x" * LIMIT}).encode(), JSON, 413,
     "over the 50000-byte limit"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "ctype", "status", "words"),
    BAD_BODIES,
    ids=["malformed-json", "not-an-object", "wrong-type", "oversized"],
)
def test_bad_bodies_are_refused_in_the_callers_format_and_never_forwarded(
    path: str, body: bytes, ctype: str, status: int, words: str,
    gw: RunningGateway, provider: Provider,
) -> None:  # fmt: skip
    before = len(provider.received)
    answer = gw.post(path, body, ctype)
    assert answer.status_code == status
    error = anthropic_error(answer) if path == MESSAGES else openai_error(answer)
    assert words in error["message"]
    assert provider.since(before) == []
    incident = INCIDENT.search(error["message"])
    assert incident and gw.event(incident.group(1))["action"] == "block"


def test_unknown_model_is_refused_before_the_provider(
    gw: RunningGateway, provider: Provider
) -> None:
    before = len(provider.received)
    answer = gw.post(CHAT, {**CHAT_BODY, "model": "gpt-9-ultra"})
    assert answer.status_code == 404
    assert openai_error(answer)["code"] == "model_not_found"
    claude = gw.post(MESSAGES, {**MESSAGES_BODY, "model": "claude-0"})
    assert anthropic_error(claude)["type"] == "not_found_error"
    assert provider.since(before) == []


def test_provider_that_hangs_up_gives_502_without_fallback(
    gw: RunningGateway, provider: Provider
) -> None:
    provider.mode = "drop"
    body = {"model": "claude-sonnet-4-6", "max_tokens": 9,
            "messages": [{"role": "user", "content": "hello"}]}  # fmt: skip
    answer = gw.post(MESSAGES, body)
    assert answer.status_code == 502
    error = anthropic_error(answer)
    assert error["type"] == "api_error"
    assert "provider anthropic is unreachable" in error["message"]
    event = gw.event(answer.headers["x-dlpproxy-incident"])
    assert "unreachable" in event["reason"]
    assert event["action"] == "allow"


def test_over_quota_answer_passes_through_without_fallback(
    gw: RunningGateway, provider: Provider
) -> None:
    provider.mode = "429"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    answer = gw.post(CHAT, body)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    assert openai_error(answer)["message"] == "provider says 429"


def test_provider_stream_cut_midway_ends_with_a_format_error(
    gw: RunningGateway, provider: Provider
) -> None:
    provider.mode = "cut"
    oai = gw.openai()
    with pytest.raises(openai.APIError, match="stream broke off"):
        openai_chat(oai, "gpt-4o-mini", "Tell me a long story about rivers.", True)
    claude = gw.anthropic()
    with pytest.raises(anthropic.APIStatusError, match="stream broke off"):
        anthropic_messages(claude, "Tell me a long story about rivers.", True)
    body = {"model": "gpt-4.1", "input": "Tell me a long story about rivers.", "stream": True}
    answer = gw.post("/v1/responses", body)
    last = answer.text.strip().split("\n\n")[-1]
    assert last.startswith("event: error\ndata: ")
    assert json.loads(last.split("data: ", 1)[1])["code"] == "upstream_stream_broken"


def test_provider_stream_cut_before_its_first_event_is_a_502_in_the_callers_format(
    gw: RunningGateway, provider: Provider
) -> None:
    provider.mode = "cut0"
    body = {**MESSAGES_BODY, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    answer = gw.post(MESSAGES, body)
    assert answer.status_code == 502
    error = anthropic_error(answer)
    assert "provider anthropic broke off before its first event" in error["message"]
    assert "before its first event" in gw.event(answer.headers["x-dlpproxy-incident"])["reason"]


def test_client_leaving_midway_closes_the_provider_stream(
    gw: RunningGateway, provider: Provider
) -> None:
    provider.mode = "slow"
    provider.gone.clear()
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "Count slowly to sixty."}]}  # fmt: skip
    headers = {"authorization": f"Bearer {gw.key}"}
    with httpx.stream("POST", gw.base_url + "/chat/completions", json=body, headers=headers,
                      timeout=30) as answer:  # fmt: skip
        first = next(answer.iter_bytes())
        assert first.startswith(b"data: ")
    assert provider.gone.wait(10), "the provider kept streaming to a gateway whose client left"


@pytest.fixture(scope="module")
def odd_local() -> Iterator[MalformedLocalModel]:
    server = MalformedLocalModel()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def malformed(
    tmp_path_factory: pytest.TempPathFactory, provider: Provider, odd_local: MalformedLocalModel
) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("gateway-malformed")
    running = start_gateway(folder, provider.base_url, odd_local.base_url, "broken")
    yield running
    running.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_local_model_answering_malformed_json_gives_a_clear_refusal(
    stream: bool, malformed: RunningGateway, provider: Provider
) -> None:
    before = len(provider.received)
    answer = anthropic_messages(malformed.anthropic(), SECRET_PROMPT, stream)
    assert "not available right now" in answer
    incident = INCIDENT.search(answer)
    assert incident
    event = malformed.event(incident.group(1))
    assert event["action"] == "block"
    assert "bad_response" in event["reason"] or "malformed" in event["reason"], event["reason"]
    assert provider.since(before) == []


def test_local_model_that_does_not_know_its_model_name_gives_a_clear_refusal(
    tmp_path: Path, provider: Provider, odd_local: MalformedLocalModel
) -> None:
    running = start_gateway(tmp_path, provider.base_url, odd_local.base_url, "llama-9-missing")
    try:
        before = len(provider.received)
        answer = running.post(CHAT, CHAT_BODY)
        assert answer.status_code == 200, answer.text
        text = answer.json()["choices"][0]["message"]["content"]
        assert "not available right now" in text and "HTTP 404" in text
        assert "model 'llama-9-missing' not found" in text
        assert provider.since(before) == []
    finally:
        running.stop()
