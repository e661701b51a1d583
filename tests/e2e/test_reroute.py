"""Sovereign reroute through the real proxy, answered by a real local model server.

The policy reroutes secrets to the company model (a real llama-cpp-python server with a tiny
GGUF model, see tests/support). For every service format, streamed and not, the prompt with a
planted AWS key never reaches the service: the local model answers, translated into the caller's
format, the official SDKs parse it, and the audit event says `reroute`. With the local model down
the prompt fails closed: our message in the caller's format, nothing sent upstream.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Proxy, free_port, start_proxy
from tests.e2e.servers import FakeAIService
from tests.e2e.test_sdks import CASES, INCIDENT, KEY, Case, Clients, by_name, clients_for
from tests.e2e.test_web_and_auth import ask_azure, ask_claude

ROOT = Path(__file__).resolve().parents[2]
BANNER = "[company model]"
SECRET_PROMPT = f"Why does boto3 refuse my key {KEY} with secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9?"


def reroute_policy(folder: Path, base_url: str, model: str) -> Path:
    """The default policy with secrets rerouted to the local model at `base_url`."""
    text = (ROOT / "rules" / "policy.yaml").read_text()
    text = text.replace(
        "  - id: block-secrets\n    category: secret\n    action: block",
        "  - id: reroute-secrets\n    category: secret\n    action: reroute",
    )
    assert "reroute-secrets" in text
    text += (
        f"\nlocal_models:\n  company:\n    base_url: {base_url}\n    model: {model}\n"
        "    timeout_s: 60\n    connect_timeout_s: 2\n    first_token_timeout_s: 30\n"
        f"reroute:\n  model: company\n  banner: '{BANNER}'\n"
    )
    path = folder / "policy.yaml"
    path.write_text(text)
    return path


def rerouting(
    factory: pytest.TempPathFactory,
    name: str,
    upstream: FakeAIService,
    base_url: str,
    model: str,
    extra: Sequence[str] = (),
) -> Iterator[Proxy]:
    """A proxy whose policy reroutes secrets to the local model at `base_url`, for a fixture."""
    folder = factory.mktemp(name)
    policy = reroute_policy(folder, base_url, model)
    running = start_proxy(folder, upstream.port, ["--policy", str(policy), *extra])
    yield running
    running.stop()


def ask_chat(proxy: Proxy, text: str, stream: bool = False) -> httpx.Response:
    """One Chat Completions request to api.openai.com through `proxy`, read whole."""
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    with proxy.client() as http:
        return http.post("https://api.openai.com/v1/chat/completions", json=body)


@pytest.fixture(scope="module")
def rerouting_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService, local_model_server: Any
) -> Iterator[Proxy]:
    local = local_model_server
    yield from rerouting(tmp_path_factory, "reroute", upstream, local.base_url, local.model)


@pytest.fixture(scope="module")
def sdk(rerouting_proxy: Proxy) -> Iterator[Clients]:
    yield from clients_for(rerouting_proxy)


@by_name
def test_secret_prompt_is_answered_by_the_local_model_in_the_callers_format(
    case: Case, sdk: Clients, upstream: FakeAIService, rerouting_proxy: Proxy
) -> None:
    before = len(upstream.received)
    answer = case.ask(sdk, SECRET_PROMPT)
    assert answer.startswith(BANNER), answer[:200]
    assert len(answer.strip()) > len(BANNER), "the local model's own text is missing"
    assert len(upstream.received) == before, "the rerouted prompt reached the service"
    events = rerouting_proxy.events("action = 'reroute'")
    assert any("answered by local model 'company'" in e["reason"] for e in events)


def test_rerouted_answer_carries_the_notice_header_and_is_audited(
    rerouting_proxy: Proxy, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    answer = ask_chat(rerouting_proxy, SECRET_PROMPT)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-dlpproxy-rerouted"] == "company"
    incident = answer.headers["x-dlpproxy-incident"]
    doc = answer.json()
    assert doc["object"] == "chat.completion"
    assert doc["choices"][0]["message"]["content"].startswith(BANNER)
    event = rerouting_proxy.event(incident)
    assert event["action"] == "reroute"
    assert "secret" in event["categories"]
    assert KEY not in str(event)
    assert len(upstream.received) == before


def test_chatgpt_web_conversation_is_answered_as_its_own_sse(
    rerouting_proxy: Proxy, upstream: FakeAIService
) -> None:
    body = {
        "action": "next",
        "messages": [{"id": "m1", "author": {"role": "user"},
                      "content": {"content_type": "text", "parts": [SECRET_PROMPT]}}],
        "model": "auto", "parent_message_id": "client-created-root",
    }  # fmt: skip
    before = len(upstream.received)
    with rerouting_proxy.client() as http:
        answer = http.post("https://chatgpt.com/backend-api/conversation", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert BANNER in answer.text
    assert answer.text.rstrip().endswith("data: [DONE]")
    assert len(upstream.received) == before


def test_claude_web_is_answered_in_its_own_format_and_azure_keeps_its_destination_rule(
    rerouting_proxy: Proxy, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    with rerouting_proxy.client() as http:
        claude = ask_claude(http, SECRET_PROMPT)
        azure = ask_azure(http, SECRET_PROMPT)
    assert claude.status_code == 200, claude.text
    assert claude.headers["content-type"].startswith("text/event-stream")
    completions = [
        json.loads(line[6:])["completion"]
        for line in claude.text.splitlines()
        if line.startswith("data: ") and '"completion"' in line
    ]
    assert "".join(completions).startswith(BANNER)
    # the shipped policy's destination rule for the company's Azure tenant blocks secrets, and
    # destination rules come before the global reroute rule
    assert azure.status_code == 200, azure.text
    assert azure.json()["choices"][0]["message"]["content"].startswith("dlpproxy blocked")
    assert "x-dlpproxy-rerouted" not in azure.headers
    assert len(upstream.received) == before


def test_clean_prompt_still_goes_to_the_service(
    rerouting_proxy: Proxy, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    answer = ask_chat(rerouting_proxy, "Name three rivers.")
    assert answer.status_code == 200
    assert "x-dlpproxy-rerouted" not in answer.headers
    assert len(upstream.received) == before + 1


@pytest.fixture(scope="module")
def proxy_with_dead_model(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService
) -> Iterator[Proxy]:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    yield from rerouting(tmp_path_factory, "reroute-dead", upstream, dead, "nothing")


DOWN_CASES = [c for c in CASES if c.name.startswith(("openai-chat", "anthropic"))]


@pytest.mark.parametrize("case", DOWN_CASES, ids=[c.name for c in DOWN_CASES])
def test_local_model_down_fails_closed_in_the_callers_format(
    case: Case, proxy_with_dead_model: Proxy, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    made = clients_for(proxy_with_dead_model)
    clients = next(made)
    try:
        answer = case.ask(clients, SECRET_PROMPT)
    finally:
        made.close()
    assert "not available right now" in answer
    incident = INCIDENT.search(answer)
    assert incident, answer
    assert len(upstream.received) == before, "a prompt that could not be rerouted went out"
    event = proxy_with_dead_model.event(incident.group(1))
    assert event["action"] == "block"
    assert "no local model answered" in event["reason"]


def test_local_model_down_stream_is_a_complete_stream(
    proxy_with_dead_model: Proxy, upstream: FakeAIService
) -> None:
    answer = ask_chat(proxy_with_dead_model, SECRET_PROMPT, stream=True)
    assert answer.status_code == 200
    assert answer.headers["x-dlpproxy-rerouted"] == "failed"
    assert answer.text.rstrip().endswith("data: [DONE]")
    assert "not available right now" in answer.text


def heartbeat_models(proxy: Proxy, wait_s: float = 30.0) -> dict[str, str]:
    """The local model states of the proxy's latest heartbeat, once it reports them."""
    deadline = time.monotonic() + wait_s
    models: dict[str, str] = {}
    while time.monotonic() < deadline:
        db = sqlite3.connect(f"file:{proxy.audit_db}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute("SELECT status FROM heartbeat").fetchall()
        except sqlite3.OperationalError:
            rows = []
        finally:
            db.close()
        models = json.loads(rows[-1][0]).get("local_models", {}) if rows else {}
        if models and not any(v.startswith("unknown") for v in models.values()):
            return models
        time.sleep(0.5)
    return models


def test_heartbeat_reports_local_model_health(
    rerouting_proxy: Proxy, proxy_with_dead_model: Proxy
) -> None:
    assert heartbeat_models(rerouting_proxy) == {"company": "ok"}
    dead = heartbeat_models(proxy_with_dead_model)
    assert dead["company"].startswith(("down", "circuit")), dead


def test_http2_client_gets_the_rerouted_stream_over_http2(
    rerouting_proxy: Proxy, upstream: FakeAIService
) -> None:
    """Browsers talk HTTP/2 to the services: the relay behind mitmproxy is HTTP/1.1, the client
    still gets its stream over HTTP/2, event by event."""
    body = {
        "model": "gpt-4o", "stream": True,
        "messages": [{"role": "user", "content": SECRET_PROMPT}],
    }  # fmt: skip
    before = len(upstream.received)
    with rerouting_proxy.client(http2=True) as h2:
        url = "https://api.openai.com/v1/chat/completions"
        with h2.stream("POST", url, json=body) as answer:
            assert answer.http_version == "HTTP/2"
            assert answer.headers["x-dlpproxy-rerouted"] == "company"
            events = [line for line in answer.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    text = "".join(
        json.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events[:-1]
    )
    assert text.startswith(BANNER)
    assert len(upstream.received) == before


@pytest.fixture(scope="module")
def proxy_behind_upstream(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService, local_model_server: Any
) -> Iterator[Proxy]:
    """dlpproxy chained to a corporate upstream proxy that is not even there: rerouted prompts
    never need it (lazy connections, so nothing is opened before the request is decided)."""
    local = local_model_server
    extra = ["--upstream", f"http://127.0.0.1:{free_port()}", "--set", "connection_strategy=lazy"]
    yield from rerouting(
        tmp_path_factory, "reroute-upstream", upstream, local.base_url, local.model, extra
    )


def test_rerouted_prompt_goes_to_the_local_relay_not_through_the_upstream_proxy(
    proxy_behind_upstream: Proxy, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    answer = ask_chat(proxy_behind_upstream, SECRET_PROMPT)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-dlpproxy-rerouted"] == "company"
    assert answer.json()["choices"][0]["message"]["content"].startswith(BANNER)
    assert len(upstream.received) == before
