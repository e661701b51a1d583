"""The proxy's reroute relay: one fetch per job over loopback HTTP, expiry of unfetched jobs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from dlpproxy.proxy.relay import Relay
from tests.test_reroute import job


def test_a_job_is_answered_once_then_404() -> None:
    async def go() -> tuple[int, int, str]:
        relay = Relay()
        work = job("openai_chat", False, "http://127.0.0.1:9/v1")  # nothing there: refusal
        path = await relay.register(work)
        url = f"http://{relay.address[0]}:{relay.address[1]}{path}"
        async with httpx.AsyncClient() as client:
            first = await client.get(url)
            again = await client.get(url)
        await relay.close()
        return first.status_code, again.status_code, first.text

    first, again, text = asyncio.run(go())
    assert first == 200 and "not available right now" in text
    assert again == 404


def test_a_job_nobody_fetches_expires_and_is_reported() -> None:
    outcomes: list[str] = []

    async def go() -> Any:
        relay = Relay()
        relay.ttl_s = 0.05
        work = job("anthropic", False, "http://127.0.0.1:9/v1")
        work.on_done = lambda j: outcomes.append(j.outcome)
        path = await relay.register(work)
        await asyncio.sleep(0.3)
        remaining = dict(relay.jobs)
        url = f"http://{relay.address[0]}:{relay.address[1]}{path}"
        async with httpx.AsyncClient() as client:
            late = await client.get(url)
        await relay.close()
        return remaining, late.status_code

    remaining, late = asyncio.run(go())
    assert remaining == {}
    assert outcomes == ["the client left before the local model was asked"]
    assert late == 404
