"""`dlpproxy gateway` end to end: the official SDKs call the real gateway by base URL; a recording
stand-in provider on loopback plays OpenAI and Anthropic, and the REAL local model server (a
llama-cpp-python server with a tiny GGUF model, tests/support) answers rerouted prompts.

A clean prompt reaches the provider with the provider key the gateway holds (never the app's); a
prompt holding an AWS key is answered by the local model in the caller's format, streamed and
not, for Chat Completions, Responses and Messages, and never reaches the provider; an e-mail is
redacted upstream and restored in the answer; the audit store says what happened, for which app.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.test_sdks import anthropic_messages, openai_chat, openai_responses
from tests.support.tiny_gguf import EOS
from tests.test_gateway_stack import (
    ANTHROPIC_MODELS,
    BANNER,
    CLEAN_PROMPT,
    EMAIL,
    EMBEDDING,
    KEY,
    OPENAI_MODELS,
    PROVIDER_KEY,
    SECRET_PROMPT,
    Provider,
    RunningGateway,
    start_gateway,
)

CONFIGURED = [*OPENAI_MODELS, *ANTHROPIC_MODELS, "company"]


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, provider: Provider, local_model_server: Any
) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("gateway")
    local = local_model_server
    running = start_gateway(folder, provider.base_url, local.base_url, local.model,
                            detectors="secrets,pii")  # fmt: skip
    yield running
    running.stop()


@pytest.fixture(scope="module")
def oai(gw: RunningGateway) -> Iterator[openai.OpenAI]:
    with gw.openai() as client:
        yield client


@pytest.fixture(scope="module")
def claude(gw: RunningGateway) -> Iterator[anthropic.Anthropic]:
    with gw.anthropic() as client:
        yield client


def test_clean_prompt_reaches_the_provider_with_the_gateways_key_not_the_apps(
    oai: openai.OpenAI, provider: Provider, gw: RunningGateway
) -> None:
    before = len(provider.received)
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": CLEAN_PROMPT}]
    )
    assert raw.parse().choices[0].message.content == f"You said: {CLEAN_PROMPT}"
    [sent] = provider.since(before)
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert gw.key not in json.dumps(headers)
    assert "x-api-key" not in headers
    event = gw.event(raw.headers["x-dlpproxy-incident"])
    assert (event["action"], event["user"], event["service"]) == (
        "allow", "billing-bot", "gateway:openai",
    )  # fmt: skip


def test_anthropic_prompt_reaches_the_provider_with_x_api_key(
    claude: anthropic.Anthropic, provider: Provider, gw: RunningGateway
) -> None:
    before = len(provider.received)
    answer = anthropic_messages(claude, CLEAN_PROMPT, stream=True)
    assert answer == f"You said: {CLEAN_PROMPT}"
    [sent] = provider.since(before)
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["x-api-key"] == PROVIDER_KEY
    assert headers["anthropic-version"]
    assert "authorization" not in headers
    assert gw.key not in json.dumps(headers)


Ask = Callable[[openai.OpenAI, anthropic.Anthropic, str, bool], str]
FORMATS: dict[str, Ask] = {
    "chat": lambda o, a, text, stream: openai_chat(o, "gpt-4o-mini", text, stream),
    "responses": lambda o, a, text, stream: openai_responses(o, text, stream),
    "messages": lambda o, a, text, stream: anthropic_messages(a, text, stream),
}
CASES = [(name, stream) for name in FORMATS for stream in (False, True)]


@pytest.mark.parametrize(("name", "stream"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_secret_prompt_is_answered_by_the_local_model_in_the_callers_format(
    name: str, stream: bool, oai: openai.OpenAI, claude: anthropic.Anthropic,
    provider: Provider, gw: RunningGateway,
) -> None:  # fmt: skip
    before = len(provider.received)
    answer = FORMATS[name](oai, claude, SECRET_PROMPT, stream)
    assert answer.startswith(BANNER), answer[:200]
    assert len(answer.strip()) > len(BANNER), "the local model's own text is missing"
    assert provider.since(before) == [], "the rerouted prompt reached the provider"
    rows = gw.events("action = 'reroute' AND reason LIKE '%answered by local model ''company''%'")
    assert rows and all(r["user"] == "billing-bot" for r in rows)


def test_rerouted_answer_carries_the_notice_and_the_audit_event_says_reroute(
    gw: RunningGateway, provider: Provider
) -> None:
    before = len(provider.received)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
    answer = gw.post("/v1/chat/completions", body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-dlpproxy-rerouted"] == "company"
    assert answer.json()["choices"][0]["message"]["content"].startswith(BANNER)
    event = gw.event(answer.headers["x-dlpproxy-incident"])
    assert event["action"] == "reroute"
    assert event["categories"] == "secret"
    assert event["service"] == "gateway:openai"
    assert KEY not in json.dumps(event)
    assert provider.since(before) == []


@pytest.mark.parametrize(("name", "stream"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_email_is_redacted_upstream_and_restored_in_the_answer(
    name: str, stream: bool, oai: openai.OpenAI, claude: anthropic.Anthropic, provider: Provider
) -> None:
    before = len(provider.received)
    answer = FORMATS[name](oai, claude, f"Write to {EMAIL} about the offsite.", stream)
    [sent] = provider.since(before)
    assert EMAIL not in sent["raw"].decode()
    assert "[EMAIL_1]" in sent["raw"].decode()
    assert answer == f"You said: Write to {EMAIL} about the offsite."


def test_app_may_ask_for_the_local_model_by_name(
    oai: openai.OpenAI, provider: Provider, gw: RunningGateway
) -> None:
    before = len(provider.received)
    raw = oai.chat.completions.with_raw_response.create(
        model="company", messages=[{"role": "user", "content": CLEAN_PROMPT}], max_tokens=8
    )
    assert raw.headers["x-dlpproxy-rerouted"] == "company"
    assert raw.parse().choices[0].message.content
    assert provider.since(before) == []
    event = gw.event(raw.headers["x-dlpproxy-incident"])
    assert event["action"] == "reroute"
    assert "the app asked for local model 'company'" in event["reason"]


def test_models_lists_the_configured_and_the_local_models(
    oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    assert [m.id for m in oai.models.list()] == CONFIGURED
    assert [m.id for m in claude.models.list()] == CONFIGURED


def test_clean_embeddings_pass_through_to_the_provider(
    oai: openai.OpenAI, provider: Provider
) -> None:
    before = len(provider.received)
    result = oai.embeddings.create(model="text-embedding-3-small", input=["a river", CLEAN_PROMPT])
    assert result.data[0].embedding == EMBEDDING
    [sent] = provider.since(before)
    assert sent["body"]["input"] == ["a river", CLEAN_PROMPT]
    assert sent["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"


def test_embeddings_of_a_secret_are_made_by_the_local_model(
    gw: RunningGateway, provider: Provider
) -> None:
    before = len(provider.received)
    body = {"model": "text-embedding-3-small", "input": ["fine", SECRET_PROMPT]}
    answer = gw.post("/v1/embeddings", body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-dlpproxy-rerouted"] == "company"
    vectors = [d["embedding"] for d in answer.json()["data"]]
    assert len(vectors) == 2 and all(len(v) > 1 for v in vectors) and vectors[0] != EMBEDDING
    assert provider.since(before) == []
    event = gw.event(answer.headers["x-dlpproxy-incident"])
    assert event["action"] == "reroute"
    assert "answered by local model 'company'" in event["reason"]


def test_gateway_keys_are_stored_as_hashes_only(gw: RunningGateway) -> None:
    text = Path(gw.gateway.config.source).read_text()
    assert gw.key not in text
    assert PROVIDER_KEY not in text


def test_client_leaving_a_local_stream_stops_it_and_the_audit_says_so(
    gw: RunningGateway, provider: Provider
) -> None:
    body = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 4000,
            "logit_bias": {str(EOS): -100},  # no end of sequence: a long answer
            "messages": [{"role": "user", "content": SECRET_PROMPT}]}  # fmt: skip
    headers = {"authorization": f"Bearer {gw.key}"}
    with httpx.stream("POST", f"{gw.base_url}/chat/completions", json=body, headers=headers,
                      timeout=60) as answer:  # fmt: skip
        incident = answer.headers["x-dlpproxy-incident"]
        assert next(answer.iter_bytes()).startswith(b"data: ")
    event = gw.event(incident)
    assert event["action"] == "reroute"
    assert "client left while 'company' was answering" in event["reason"]
