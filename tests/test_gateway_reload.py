"""gateway.yaml is reloaded while the gateway runs: a new key works and a removed one stops at
once, a provider moved to another URL is called there, and a broken edit keeps what was working
(real gateway on loopback, real recording stand-ins for the provider)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dlpproxy.gateway.config import GatewayConfigHolder
from tests.test_gateway_stack import (
    CLEAN_PROMPT,
    OPENAI_MODELS,
    Provider,
    RunningGateway,
    start_gateway,
    write_config,
)

LOCAL = "http://127.0.0.1:9/v1"  # no local model is needed: every prompt here is clean


@pytest.fixture
def gw(tmp_path: Path, provider: Provider) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path, provider.base_url, LOCAL, detectors="secrets")
    assert isinstance(running.gateway.configs, GatewayConfigHolder)
    running.gateway.configs.check_every = 0.0  # look at the file on every request
    yield running
    running.stop()


def _chat(gw: RunningGateway, key: str) -> httpx.Response:
    body = {"model": OPENAI_MODELS[0], "messages": [{"role": "user", "content": CLEAN_PROMPT}]}
    return gw.post("/v1/chat/completions", body, key=key)


def _rewrite(folder: Path, provider_url: str) -> str:
    """A new gateway.yaml (a fresh key replaces the old one); the new key. The file's size and
    time change, so the next request sees it."""
    time.sleep(0.01)
    _, key = write_config(folder, provider_url)
    return key


def test_a_new_key_works_and_the_removed_one_stops(gw: RunningGateway, provider: Provider) -> None:
    old = gw.key
    assert _chat(gw, old).status_code == 200
    new = _rewrite(gw.audit_db.parent, provider.base_url)
    assert _chat(gw, new).status_code == 200
    refused = _chat(gw, old)
    assert refused.status_code == 401
    assert "invalid or missing gateway key" in refused.text


def test_a_provider_moved_to_another_url_is_called_there(
    gw: RunningGateway, provider: Provider
) -> None:
    other = Provider()
    try:
        key = _rewrite(gw.audit_db.parent, other.base_url)
        before = len(provider.received)
        assert _chat(gw, key).status_code == 200
        assert len(provider.received) == before
        assert other.received and other.received[-1]["body"]["messages"][0]["content"] == (
            CLEAN_PROMPT
        )
    finally:
        other.stop()


def test_a_broken_edit_keeps_the_working_configuration(gw: RunningGateway) -> None:
    config = gw.audit_db.parent / "gateway.yaml"
    good = config.read_text()
    config.write_text(good.replace("version: 1", "version: 2"))
    assert _chat(gw, gw.key).status_code == 200
    configs = gw.gateway.configs
    assert configs is not None
    assert configs.error.startswith("kept the previous gateway configuration:")
    assert "expected 'version: 1'" in configs.error
    config.write_text(good + "\n")  # mended: the error clears
    assert _chat(gw, gw.key).status_code == 200
    assert configs.error == ""
