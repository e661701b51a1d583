"""End to end with the official clients: the `openai` and `anthropic` SDKs (and httpx for Gemini)
talk through the real proxy to the loopback stand-in of each service.

For every adapter, streaming and not: a clean prompt reaches the service unchanged, a planted AWS
key is blocked with an answer the client parses as a normal reply naming the incident, an e-mail
address is replaced by `[EMAIL_1]` upstream and restored in the answer, and the audit store keeps
the decisions but no trace of the planted values.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import Proxy
from tests.e2e.servers import ANSWER_ENCODING, FakeAIService, last_user_text

try:  # the 2.x/3.x SDKs talk through their own fork of httpx
    import httpx2 as sdk_http
except ImportError:
    import httpx as sdk_http  # type: ignore[no-redef]

KEY = "AKIAR5TQ2MXW7KZP4VNJ"  # synthetic: AKIA + 16 of [A-Z2-7]
EMAIL = "minji.kang@hanbit-semicon.co.kr"
INCIDENT = re.compile(r"[Ii]ncident ([0-9a-f]{16})")
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash"


@dataclass(frozen=True, slots=True)
class Clients:
    openai: openai.OpenAI
    deepseek: openai.OpenAI
    anthropic: anthropic.Anthropic
    http: httpx.Client


def clients_for(proxy: Proxy) -> Iterator[Clients]:
    """SDK clients that talk through `proxy`; closed when the generator is closed."""

    def sdk_client() -> Any:
        return sdk_http.Client(proxy=proxy.url, verify=proxy.ssl_context(), timeout=60)

    made = Clients(
        openai.OpenAI(api_key="sk-test", http_client=sdk_client(), max_retries=0),
        openai.OpenAI(
            api_key="sk-test",
            base_url="https://api.deepseek.com",
            http_client=sdk_client(),
            max_retries=0,
        ),
        anthropic.Anthropic(api_key="sk-ant-test", http_client=sdk_client(), max_retries=0),
        proxy.client(),
    )
    try:
        yield made
    finally:
        made.openai.close()
        made.deepseek.close()
        made.anthropic.close()
        made.http.close()


@pytest.fixture(scope="module")
def clients(proxy: Proxy) -> Iterator[Clients]:
    yield from clients_for(proxy)


def openai_chat(sdk: openai.OpenAI, model: str, text: str, stream: bool) -> str:
    messages: Any = [{"role": "user", "content": text}]
    if not stream:
        answer = sdk.chat.completions.create(model=model, messages=messages)
        return answer.choices[0].message.content or ""
    chunks = sdk.chat.completions.create(model=model, messages=messages, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def openai_responses(sdk: openai.OpenAI, text: str, stream: bool) -> str:
    if not stream:
        return sdk.responses.create(model="gpt-4.1", input=text).output_text
    streamed, completed = "", None
    for event in sdk.responses.create(model="gpt-4.1", input=text, stream=True):
        if event.type == "response.output_text.delta":
            streamed += event.delta
        elif event.type == "response.completed":
            completed = event.response.output_text
    assert completed == streamed
    return streamed


def anthropic_messages(sdk: anthropic.Anthropic, text: str, stream: bool) -> str:
    messages: Any = [{"role": "user", "content": text}]
    model = "claude-sonnet-4-6"
    if not stream:
        answer = sdk.messages.create(model=model, max_tokens=512, messages=messages)
        return "".join(b.text for b in answer.content if b.type == "text")
    with sdk.messages.stream(model=model, max_tokens=512, messages=messages) as events:
        streamed = "".join(events.text_stream)
        final = events.get_final_message()
    assert "".join(b.text for b in final.content if b.type == "text") == streamed
    return streamed


def gemini(http: httpx.Client, text: str, stream: bool) -> str:
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    headers = {"x-goog-api-key": "gemini-test"}
    if not stream:
        answer = http.post(f"{GEMINI}:generateContent", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return "".join(p["text"] for p in answer.json()["candidates"][0]["content"]["parts"])
    url = f"{GEMINI}:streamGenerateContent?alt=sse"
    answer = http.post(url, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    text_out = ""
    for line in answer.text.splitlines():
        if line.startswith("data: "):
            for part in json.loads(line[6:])["candidates"][0]["content"]["parts"]:
                text_out += part.get("text", "")
    return text_out


Call = Callable[[Clients, str, bool], str]


@dataclass(frozen=True, slots=True)
class Case:
    """One way a client talks to one service: the host it reaches, its service name, the call."""

    name: str
    host: str
    service: str
    call: Call
    stream: bool

    def ask(self, clients: Clients, text: str) -> str:
        return self.call(clients, text, self.stream)


SERVICES: list[tuple[str, str, str, Call]] = [
    ("openai-chat", "api.openai.com", "openai-api",
     lambda c, t, s: openai_chat(c.openai, "gpt-4o", t, s)),
    ("openai-responses", "api.openai.com", "openai-api",
     lambda c, t, s: openai_responses(c.openai, t, s)),
    ("anthropic", "api.anthropic.com", "anthropic-api",
     lambda c, t, s: anthropic_messages(c.anthropic, t, s)),
    ("gemini", "generativelanguage.googleapis.com", "gemini-api",
     lambda c, t, s: gemini(c.http, t, s)),
    ("deepseek", "api.deepseek.com", "deepseek-api",
     lambda c, t, s: openai_chat(c.deepseek, "deepseek-chat", t, s)),
]  # fmt: skip
CASES = [
    Case(name + ("-stream" if stream else ""), host, service, call, stream)
    for name, host, service, call in SERVICES
    for stream in (False, True)
]
by_name = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])


def exchange(
    case: Case, clients: Clients, upstream: FakeAIService, prompt: str
) -> tuple[str, list[tuple[str, str]]]:
    """Ask `prompt`; the answer and (Host, user text) of each request the service received."""
    before = len(upstream.received)
    answer = case.ask(clients, prompt)
    sent = [
        (r["host"], last_user_text(urlsplit(r["path"]).path, r["body"]))
        for r in upstream.received[before:]
    ]
    return answer, sent


@by_name
def test_clean_prompt_reaches_the_service_unchanged(
    case: Case, clients: Clients, upstream: FakeAIService
) -> None:
    prompt = f"Summarise the plot of Hamlet in two sentences, please ({case.name})."
    answer, sent = exchange(case, clients, upstream, prompt)
    assert sent == [(case.host, prompt)]
    assert answer == f"You said: {prompt}"


@by_name
def test_planted_aws_key_is_blocked_with_a_native_answer_naming_the_incident(
    case: Case, clients: Clients, upstream: FakeAIService
) -> None:
    prompt = f"boto3 says InvalidClientTokenId for {KEY} ({case.name}), why?"
    answer, sent = exchange(case, clients, upstream, prompt)
    assert sent == []
    assert "blocked" in answer
    assert INCIDENT.search(answer), answer
    assert KEY not in answer


@by_name
def test_email_is_redacted_upstream_and_restored_in_the_answer(
    case: Case, clients: Clients, upstream: FakeAIService
) -> None:
    prompt = f"Draft a thank-you note to {EMAIL} for the design review ({case.name})."
    answer, sent = exchange(case, clients, upstream, prompt)
    assert sent == [(case.host, prompt.replace(EMAIL, "[EMAIL_1]"))]
    assert answer == f"You said: {prompt}"


@by_name
def test_audit_event_of_a_block_names_the_service_and_the_secret_type(
    case: Case, clients: Clients, proxy: Proxy
) -> None:
    answer = case.ask(clients, f"rotate {KEY} before Friday ({case.name})")
    found = INCIDENT.search(answer)
    assert found, answer
    event = proxy.event(found.group(1))
    findings = json.loads(event["findings"])
    assert (event["action"], event["service"], event["host"]) == ("block", case.service, case.host)
    assert [f["category"] for f in findings] == ["secret"]
    assert KEY[4:-2] not in event["findings"]


@by_name
def test_audit_event_of_a_redaction_is_found_by_the_incident_header_sent_upstream(
    case: Case, clients: Clients, upstream: FakeAIService, proxy: Proxy
) -> None:
    before = len(upstream.received)
    case.ask(clients, f"Invite {EMAIL} to the Thursday sync ({case.name}).")
    (request,) = upstream.received[before:]
    event = proxy.event(request["headers"]["x-dlpproxy-incident"])
    findings = json.loads(event["findings"])
    assert (event["action"], event["service"]) == ("redact", case.service)
    assert [f["type"] for f in findings] == ["email"]


def test_audit_store_holds_no_trace_of_the_planted_values(clients: Clients, proxy: Proxy) -> None:
    incidents = []
    for case in CASES:
        answer = case.ask(clients, f"mail {EMAIL} the key {KEY} ({case.name})")
        found = INCIDENT.search(answer)
        assert found, answer
        incidents.append(found.group(1))
    for incident in incidents:
        proxy.event(incident)
    time.sleep(0.5)  # the writer commits in batches; let the last one land in the files
    traces = [KEY, KEY[4:], EMAIL, EMAIL.split("@")[0], EMAIL.split("@")[1]]
    traces += [hashlib.sha256(v.encode()).hexdigest() for v in (KEY, EMAIL)]
    files = sorted(proxy.folder.glob("audit.db*"))
    assert proxy.audit_db in files
    for file in files:
        raw = file.read_bytes()
        assert [t for t in traces if t.encode() in raw] == [], file.name


def test_gzip_encoded_stream_is_restored(clients: Clients, upstream: FakeAIService) -> None:
    prompt = f"Forward the agenda to {EMAIL} ({ANSWER_ENCODING})."
    chunks = clients.openai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True,
        extra_headers={ANSWER_ENCODING: "gzip", "accept-encoding": "gzip"},
    )  # fmt: skip
    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert answer == f"You said: {prompt}"


def test_same_email_keeps_its_placeholder_across_turns(
    clients: Clients, upstream: FakeAIService
) -> None:
    other = "joon.seo@hanbit-semicon.co.kr"
    first = f"Book a room for {EMAIL} on Monday."
    messages: Any = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": f"You said: {first}"},
        {"role": "user", "content": f"Also invite {other} and {EMAIL}."},
    ]
    clients.openai.chat.completions.create(model="gpt-4o", messages=messages[:1])
    clients.openai.chat.completions.create(model="gpt-4o", messages=messages)
    sent = [m["content"] for m in upstream.received[-1]["body"]["messages"]]
    assert sent == [
        "Book a room for [EMAIL_1] on Monday.",
        "You said: Book a room for [EMAIL_1] on Monday.",
        "Also invite [EMAIL_2] and [EMAIL_1].",
    ]


def test_gemini_json_array_stream_restores_a_placeholder_split_across_elements(
    clients: Clients,
) -> None:
    prompt = f"Send the minutes to {EMAIL}."
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    answer = clients.http.post(f"{GEMINI}:streamGenerateContent", json=body)
    assert answer.headers["content-type"].startswith("application/json")
    elements = answer.json()
    assert len(elements) > 1
    text = "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in elements)
    assert text == f"You said: {prompt}"
