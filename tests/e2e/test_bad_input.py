"""Bad input through the real proxy: every body to an AI host gets a definite decision.

Fail closed: what cannot be read is blocked with a reason and an audit event, never passed to the
service unscanned, and never takes the proxy down: after each case a clean prompt still goes
through (the `still_serving` check).
"""

from __future__ import annotations

import gzip
import json
import re
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import brotli
import httpx
import pytest
import zstandard

from tests.conftest import RULES
from tests.e2e.conftest import Proxy, start_proxy
from tests.e2e.servers import FakeAIService

KEY = "AKIAW3XQ7RZT2MKP5NVB"  # synthetic: AKIA + 16 of [A-Z2-7]
EMAIL = "carmen.ortega@grupo-andaluz.es"
CHAT = "https://api.openai.com/v1/chat/completions"
SMALL_LIMIT = 4096
DEFAULT_POLICY = (RULES / "policy.yaml").read_text()
DEFAULT_LIMIT = int(re.findall(r"(?m)^max_body_bytes: *(\d+)", DEFAULT_POLICY)[0])
COMPRESS: dict[str, Any] = {
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def chat_body(*contents: str) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": c} for c in contents]}


@contextmanager
def nothing_sent(upstream: FakeAIService) -> Iterator[None]:
    """The block inside sends no request to the service."""
    before = len(upstream.received)
    yield
    assert upstream.received[before:] == []


def post(
    client: httpx.Client, body: bytes | Iterator[bytes], url: str = CHAT, **headers: str
) -> httpx.Response:
    return client.post(url, content=body, headers={"content-type": "application/json", **headers})


def refusal(proxy: Proxy, answer: httpx.Response, reason: str) -> dict[str, Any]:
    """Check a fail-closed refusal quoting `reason` and its audit event; return the event.

    A body that could not be read gets a 403 error; a body read but not scanned (timeout) gets
    the service's own answer format, like any block.
    """
    doc = answer.json()
    if answer.status_code == 403:
        message = doc["error"]["message"]
    else:
        assert answer.status_code == 200, answer.text
        message = doc["choices"][0]["message"]["content"]
    assert "dlpproxy blocked this request" in message
    assert reason in message
    event = proxy.event(answer.headers["x-dlpproxy-incident"])
    assert (event["action"], event["rule"]) == ("block", "fail-closed")
    assert reason in event["reason"]
    return event


def blocked_for_secret(proxy: Proxy, answer: httpx.Response) -> dict[str, Any]:
    """Check a block by the policy (the service's own answer format) and its audit event."""
    assert answer.status_code == 200, answer.text
    assert "blocked" in answer.json()["choices"][0]["message"]["content"]
    event = proxy.event(answer.headers["x-dlpproxy-incident"])
    assert (event["action"], event["rule"]) == ("block", "block-secrets")
    return event


def clean_prompt_passes(client: httpx.Client, upstream: FakeAIService) -> None:
    before = len(upstream.received)
    answer = post(client, json.dumps(chat_body("What is 2 + 2?")).encode())
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "You said: What is 2 + 2?"
    assert len(upstream.received) == before + 1


@pytest.fixture
def still_serving(
    proxy: Proxy, client: httpx.Client, upstream: FakeAIService
) -> Iterator[FakeAIService]:
    """After the test: the proxy process lives and a clean prompt still goes through."""
    yield upstream
    assert proxy.alive(), proxy.log[-3000:]
    clean_prompt_passes(client, upstream)


@pytest.fixture(scope="module")
def strict_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService
) -> Iterator[Proxy]:
    """A second proxy whose policy (written here) refuses request bodies over 4 KiB."""
    folder = tmp_path_factory.mktemp("strict")
    policy, count = re.subn(
        r"(?m)^max_body_bytes: *\d+", f"max_body_bytes: {SMALL_LIMIT}", DEFAULT_POLICY
    )
    assert count == 1
    (folder / "policy.yaml").write_text(policy)
    running = start_proxy(folder, upstream.port, ["--policy", str(folder / "policy.yaml")])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def hasty_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService
) -> Iterator[Proxy]:
    """A third proxy whose scan time budget (1 ms) no real prompt can meet."""
    folder = tmp_path_factory.mktemp("hasty")
    running = start_proxy(folder, upstream.port, ["--set", "dlp_time_budget_ms=1"])
    yield running
    running.stop()


def test_malformed_json_is_refused_with_the_parse_error(
    proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    with nothing_sent(still_serving):
        answer = post(client, b'{"model": "m", "messages": [{"role": "user" "content": "hi"}]}')
        refusal(proxy, answer, "malformed JSON body: Expecting ',' delimiter at line 1 column 45")


def test_truncated_json_with_a_key_is_refused_as_truncated(
    proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    whole = json.dumps(chat_body(f"my key is {KEY}, what does it unlock?")).encode()
    with nothing_sent(still_serving):
        refusal(proxy, post(client, whole[: len(whole) - 7]), "truncated JSON body")


def test_chat_body_declared_as_text_plain_is_refused_naming_the_type(
    proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    body = json.dumps(chat_body("Translate 'good morning' into Korean")).encode()
    with nothing_sent(still_serving):
        answer = post(client, body, **{"content-type": "text/plain"})
        refusal(proxy, answer, "expected application/json, got 'text/plain'")


def test_latin1_body_is_refused_naming_the_first_bad_byte(
    proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    latin1 = json.dumps(chat_body("Résumé of Ana Muñoz"), ensure_ascii=False).encode("latin-1")
    offset = latin1.index(b"\xe9")
    with nothing_sent(still_serving):
        answer = post(client, latin1, **{"content-type": "application/json; charset=utf-8"})
        refusal(proxy, answer, f"not UTF-8 (byte 0xe9 at offset {offset})")


@pytest.mark.parametrize("coding", sorted(COMPRESS))
def test_compressed_body_with_a_key_is_decoded_and_blocked(
    coding: str, proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    body = COMPRESS[coding](json.dumps(chat_body(f"deploy with {KEY} ({coding})")).encode())
    with nothing_sent(still_serving):
        answer = post(client, body, **{"content-encoding": coding})
        blocked_for_secret(proxy, answer)


@pytest.mark.parametrize("coding", sorted(COMPRESS))
def test_compressed_clean_body_reaches_the_service_as_sent(
    coding: str, client: httpx.Client, still_serving: FakeAIService
) -> None:
    prompt = f"Name three rivers in Spain ({coding})"
    body = COMPRESS[coding](json.dumps(chat_body(prompt)).encode())
    before = len(still_serving.received)
    answer = post(client, body, **{"content-encoding": coding})
    assert answer.json()["choices"][0]["message"]["content"] == f"You said: {prompt}"
    (got,) = still_serving.received[before:]
    assert got["headers"]["content-encoding"] == coding
    assert got["body"]["messages"][0]["content"] == prompt


def test_gzip_body_with_an_email_is_redacted_inside_the_compressed_body(
    client: httpx.Client, still_serving: FakeAIService
) -> None:
    prompt = f"Confirm the booking for {EMAIL} tomorrow"
    before = len(still_serving.received)
    answer = post(client, gzip.compress(json.dumps(chat_body(prompt)).encode()),
                  **{"content-encoding": "gzip"})  # fmt: skip
    (got,) = still_serving.received[before:]
    assert got["body"]["messages"][0]["content"] == prompt.replace(EMAIL, "[EMAIL_1]")
    assert answer.json()["choices"][0]["message"]["content"] == f"You said: {prompt}"


@pytest.mark.parametrize(
    ("coding", "reason"),
    [("gzip", "corrupt gzip body"), ("compress", "unsupported Content-Encoding 'compress'")],
)
def test_body_that_cannot_be_decoded_is_refused_naming_the_encoding(
    coding: str, reason: str, proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    body = json.dumps(chat_body(f"key {KEY} in a body that is not {coding}")).encode()
    with nothing_sent(still_serving):
        refusal(proxy, post(client, body, **{"content-encoding": coding}), reason)


def test_chunked_body_with_a_key_is_blocked(
    proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    body = json.dumps(chat_body(f"export AWS_ACCESS_KEY_ID={KEY}")).encode()
    with nothing_sent(still_serving):
        answer = post(client, iter([body[:40], body[40:]]))
        blocked_for_secret(proxy, answer)


def gzip_of_zeros(size: int) -> bytes:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    out = [squeeze.compress(block) for _ in range(size // len(block))]
    return b"".join([*out, squeeze.flush()])


def test_gzip_bomb_of_200_mb_is_refused_within_seconds(
    proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    bomb = gzip_of_zeros(200 << 20)
    assert len(bomb) < 1 << 20
    with nothing_sent(still_serving):
        started = time.monotonic()
        answer = post(client, bomb, **{"content-encoding": "gzip"})
        assert time.monotonic() - started < 10
        refusal(proxy, answer, f"gzip body expands past the {DEFAULT_LIMIT}-byte limit")


def refused_by_strict_proxy(
    strict_proxy: Proxy, upstream: FakeAIService, body: bytes, reason: str, **headers: str
) -> None:
    """The small-limit proxy refuses `body` quoting `reason`, then still passes a clean prompt."""
    with strict_proxy.client() as client:
        with nothing_sent(upstream):
            refusal(strict_proxy, post(client, body, **headers), reason)
        clean_prompt_passes(client, upstream)


def test_body_over_the_policy_limit_is_refused_unscanned(
    strict_proxy: Proxy, upstream: FakeAIService
) -> None:
    body = json.dumps(chat_body("Proofread this: " + "the quick brown fox. " * 250)).encode()
    assert len(body) > SMALL_LIMIT
    refused_by_strict_proxy(strict_proxy, upstream, body, f"over the {SMALL_LIMIT}-byte limit")


def test_small_gzip_body_expanding_over_the_policy_limit_is_refused(
    strict_proxy: Proxy, upstream: FakeAIService
) -> None:
    body = gzip.compress(json.dumps(chat_body("x" * (4 * SMALL_LIMIT))).encode())
    assert len(body) < SMALL_LIMIT
    refused_by_strict_proxy(
        strict_proxy, upstream, body, f"past the {SMALL_LIMIT}-byte limit",
        **{"content-encoding": "gzip"},
    )  # fmt: skip


def test_http2_clean_prompt_passes_and_is_answered_over_http2(
    proxy: Proxy, still_serving: FakeAIService
) -> None:
    before = len(still_serving.received)
    with proxy.client(http2=True) as h2:
        answer = h2.post(CHAT, json=chat_body("Is HTTP/2 multiplexed?"))
    assert answer.http_version == "HTTP/2"
    assert answer.json()["choices"][0]["message"]["content"] == "You said: Is HTTP/2 multiplexed?"
    assert len(still_serving.received) == before + 1


def test_http2_prompt_with_a_key_is_blocked(proxy: Proxy, still_serving: FakeAIService) -> None:
    with nothing_sent(still_serving):
        with proxy.client(http2=True) as h2:
            answer = h2.post(CHAT, json=chat_body(f"is {KEY} still valid?"))
        assert answer.http_version == "HTTP/2"
        blocked_for_secret(proxy, answer)


def conversation(count: int, planted: str = "") -> list[str]:
    """`count` turns of about 2 KB each; `planted` goes into the middle turn."""
    turns = []
    for i in range(count):
        line = f"Turn {i}: the review of module {i % 37} found nothing unusual in the logs. "
        turns.append((line * (2048 // len(line) + 1))[:2048])
    if planted:
        turns[count // 2] = turns[count // 2][:1000] + planted + turns[count // 2][1000:]
    return turns


def test_conversation_of_500_turns_is_scanned_and_answered(
    client: httpx.Client, still_serving: FakeAIService
) -> None:
    turns = conversation(500)
    before = len(still_serving.received)
    answer = post(client, json.dumps(chat_body(*turns)).encode())
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == f"You said: {turns[-1]}"
    (got,) = still_serving.received[before:]
    assert [m["content"] for m in got["body"]["messages"]] == turns


def test_key_in_the_middle_of_500_turns_is_blocked(
    proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    body = json.dumps(chat_body(*conversation(500, planted=f" aws key {KEY} "))).encode()
    with nothing_sent(still_serving):
        event = blocked_for_secret(proxy, post(client, body))
        assert json.loads(event["findings"])[0]["segment"] == 250


def test_unknown_path_on_an_ai_host_is_scanned_by_the_generic_adapter(
    proxy: Proxy, client: httpx.Client, still_serving: FakeAIService
) -> None:
    body = {"session": {"draft": {"text": f"store {KEY} in the vault"}}, "mode": "agent"}
    url = "https://api.openai.com/v9/agents/run-draft"
    with nothing_sent(still_serving):
        answer = client.post(url, json=body)
        event = proxy.event(answer.headers["x-dlpproxy-incident"])
        assert (event["action"], event["rule"]) == ("block", "block-secrets")
        assert "blocked" in answer.text


def test_clean_body_to_an_unknown_path_reaches_the_service(
    client: httpx.Client, still_serving: FakeAIService
) -> None:
    body = {"session": {"draft": {"text": "plan the sprint review"}}}
    before = len(still_serving.received)
    answer = client.post("https://api.openai.com/v9/agents/run-draft", json=body)
    assert answer.status_code == 200
    (got,) = still_serving.received[before:]
    assert (got["path"], got["body"]) == ("/v9/agents/run-draft", body)


def test_changed_body_shape_on_a_known_route_is_scanned_by_the_generic_adapter(
    client: httpx.Client, still_serving: FakeAIService
) -> None:
    body = {"model": "gpt-5", "input_messages": [{"text": "What is the boiling point of water?"}]}
    before = len(still_serving.received)
    answer = client.post(CHAT, json=body)
    assert answer.status_code == 200, answer.text
    (got,) = still_serving.received[before:]
    assert got["body"] == body


def test_scan_over_the_time_budget_is_refused_and_the_proxy_keeps_deciding(
    hasty_proxy: Proxy, upstream: FakeAIService
) -> None:
    # phone-number candidates in every line, so presidio has work on the whole text
    prose = "Please summarise the minutes; call 010-2345-6789 about them. " * 800
    with nothing_sent(upstream), hasty_proxy.client() as client:
        for _ in range(2):
            answer = post(client, json.dumps(chat_body(prose)).encode())
            refusal(hasty_proxy, answer, "scan exceeded its 1 ms budget")
    assert hasty_proxy.alive()


def test_audit_store_keeps_no_planted_value_from_refused_bodies(
    proxy: Proxy, client: httpx.Client
) -> None:
    planted = "AKIAJ4ZQ6WPX2RTN7MKC"
    whole = json.dumps(chat_body(f"use {planted} for {EMAIL}")).encode()
    answers = [
        post(client, whole[:-5]),
        post(client, whole, **{"content-type": "text/plain"}),
        post(client, gzip.compress(whole), **{"content-encoding": "gzip"}),
        client.post("https://api.openai.com/v9/agents/run-draft", content=whole),
    ]
    for answer in answers:
        proxy.event(answer.headers["x-dlpproxy-incident"])
    time.sleep(0.5)  # the writer commits in batches; let the last one land in the files
    for file in sorted(proxy.folder.glob("audit.db*")):
        raw = file.read_bytes()
        assert [v for v in (planted, EMAIL) if v.encode() in raw] == [], file.name


def test_proxy_log_shows_no_unhandled_error(proxy: Proxy) -> None:
    assert "Traceback" not in proxy.log
