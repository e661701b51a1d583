"""Fallback to the local model when the provider is down or over quota (`fallback_to_local: true`).

The real gateway, the REAL local model server (tests/support), and either no provider at all (a
closed port) or the recording stand-in answering 503/429. A clean prompt is then answered by the
local model in the caller's format, with the notice header, and the audit reason says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_sdks import anthropic_messages, openai_chat
from tests.test_gateway_stack import (
    CLEAN_PROMPT,
    Provider,
    RunningGateway,
    free_port,
    start_gateway,
)


@pytest.fixture(scope="module")
def no_provider(
    tmp_path_factory: pytest.TempPathFactory, local_model_server: Any
) -> Iterator[RunningGateway]:
    dead, local = f"http://127.0.0.1:{free_port()}/v1", local_model_server
    folder = tmp_path_factory.mktemp("no-provider")
    running = start_gateway(folder, dead, local.base_url, local.model, fallback=True)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def flaky(
    tmp_path_factory: pytest.TempPathFactory, provider: Provider, local_model_server: Any
) -> Iterator[RunningGateway]:
    local, folder = local_model_server, tmp_path_factory.mktemp("flaky")
    running = start_gateway(folder, provider.base_url, local.base_url, local.model, fallback=True,
                            timeout_s=1.0)  # fmt: skip
    yield running
    running.stop()
    provider.mode = "ok"


@pytest.mark.parametrize("stream", [False, True])
def test_provider_down_is_answered_by_the_local_model(
    stream: bool, no_provider: RunningGateway
) -> None:
    raw = no_provider.openai().chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": CLEAN_PROMPT}],
        max_tokens=16, stream=stream,
    )  # fmt: skip
    assert raw.headers["x-dlpproxy-rerouted"] == "company"
    parsed: Any = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
    else:
        text = parsed.choices[0].message.content or ""
    assert text.strip()
    event = no_provider.event(raw.headers["x-dlpproxy-incident"])
    assert event["action"] == "reroute"
    assert "fallback: provider openai is unreachable" in event["reason"]
    assert "answered by local model 'company'" in event["reason"]


def test_provider_down_anthropic_stream_is_answered_locally(
    no_provider: RunningGateway,
) -> None:
    assert anthropic_messages(no_provider.anthropic(), CLEAN_PROMPT, True).strip()
    rows = no_provider.events("service = 'gateway:anthropic' AND reason LIKE '%fallback%'")
    assert rows and rows[-1]["action"] == "reroute"


@pytest.mark.parametrize("status", ["503", "429", "cut0"])
def test_provider_over_quota_failing_or_cut_before_answering_is_answered_locally(
    status: str, flaky: RunningGateway, provider: Provider
) -> None:
    provider.mode = status
    before = len(provider.received)
    answer = openai_chat(flaky.openai(), "gpt-4o-mini", CLEAN_PROMPT, True)
    assert answer.strip()
    assert "provider says" not in answer
    assert len(provider.since(before)) == 1  # the clean prompt was offered to the provider first
    words = "broke off before its first event" if status == "cut0" else f"answered HTTP {status}"
    rows = flaky.events(f"reason LIKE '%{words}%'")
    assert rows and rows[-1]["action"] == "reroute"


def test_provider_too_slow_is_answered_locally(flaky: RunningGateway, provider: Provider) -> None:
    provider.mode = "stall"
    claude = flaky.anthropic()
    answer = claude.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.headers["x-dlpproxy-rerouted"] == "company"
    assert answer.parse().content[0].type == "text"
    event = flaky.event(answer.headers["x-dlpproxy-incident"])
    assert "fallback: provider anthropic did not answer in time" in event["reason"]
