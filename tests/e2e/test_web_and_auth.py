"""End to end through the real proxy for the browser UIs and the corporate set-up: ChatGPT web,
Claude web and Azure OpenAI requests, files uploaded as multipart to an AI host, and proxy
authentication with an htpasswd file whose user name lands in the audit event.

The web UIs read their answers as SSE, so blocks and restored placeholders are checked in the
event format each UI parses (message snapshots for ChatGPT, `completion` events for Claude).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from tests.e2e import ldap_server
from tests.e2e.conftest import Proxy, start_proxy
from tests.e2e.servers import FakeAIService

KEY = "AKIAW4NB7QXZ2RTK5PLM"  # synthetic: AKIA + 16 of [A-Z2-7]
EMAIL = "seoyeon.lim@hanbit-semicon.co.kr"
INCIDENT = re.compile(r"[Ii]ncident ([0-9a-f]{16})")
CHATGPT = "https://chatgpt.com/backend-api/conversation"
CLAUDE = (
    "https://claude.ai/api/organizations/0f3a9c1e-org/chat_conversations/7b2d4e6f-chat/completion"
)
AZURE = (
    "https://hanbit.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
    "?api-version=2024-10-21"
)
UPLOAD = "https://chatgpt.com/backend-api/files/upload"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
USER, PASSWORD = "jiho.han", "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]


def sse_data(body: str) -> list[Any]:
    """The JSON of every `data:` line of an SSE body, `[DONE]` left out."""
    lines = [line[5:].strip() for line in body.splitlines() if line.startswith("data:")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


def chatgpt_text(answer: httpx.Response) -> str:
    """What the ChatGPT UI shows: the parts of the last message snapshot."""
    snapshots = [d["message"] for d in sse_data(answer.text) if d.get("message")]
    return "".join(snapshots[-1]["content"]["parts"])


def claude_text(answer: httpx.Response) -> str:
    """What the Claude UI shows: the `completion` events' text joined."""
    return "".join(d["completion"] for d in sse_data(answer.text) if d["type"] == "completion")


def ask_chatgpt(client: httpx.Client, text: str) -> httpx.Response:
    body = {
        "action": "next",
        "messages": [
            {
                "id": "aaa1",
                "author": {"role": "user"},
                "content": {"content_type": "text", "parts": [text]},
            }
        ],
        "parent_message_id": "client-created-root",
        "model": "auto",
    }
    return client.post(CHATGPT, json=body, headers={"accept": "text/event-stream"})


def ask_claude(client: httpx.Client, text: str) -> httpx.Response:
    body = {"prompt": text, "timezone": "Asia/Seoul", "attachments": [], "files": []}
    return client.post(CLAUDE, json=body, headers={"accept": "text/event-stream"})


def ask_azure(client: httpx.Client, text: str) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}]}
    return client.post(AZURE, json=body, headers={"api-key": "azure-test"})


def docx_with(text: str) -> bytes:
    """A minimal Word document whose one paragraph is `text`."""
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    document = f'<w:document xmlns:w="{ns}"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as docx:
        docx.writestr("[Content_Types].xml", "<Types/>")
        docx.writestr("word/document.xml", document + "</w:body></w:document>")
    return out.getvalue()


def upload(client: httpx.Client, name: str, data: bytes, mime: str) -> httpx.Response:
    return client.post(UPLOAD, files={"file": (name, data, mime)}, data={"purpose": "user_upload"})


def test_chatgpt_web_clean_prompt_reaches_the_service_and_its_answer_the_ui(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    answer = ask_chatgpt(client, "Summarise the plot of Hamlet in two lines")
    sent = upstream.received[-1]["body"]["messages"][0]["content"]["parts"][0]
    assert sent == "Summarise the plot of Hamlet in two lines"
    assert chatgpt_text(answer) == "You said: Summarise the plot of Hamlet in two lines"


def test_chatgpt_web_key_is_blocked_with_a_finished_message_snapshot(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    answer = ask_chatgpt(client, f"deploy fails, my key is {KEY}")
    assert len(upstream.received) == before
    assert answer.headers["content-type"].startswith("text/event-stream")
    last = [d["message"] for d in sse_data(answer.text)][-1]
    assert last["author"]["role"] == "assistant"
    assert last["status"] == "finished_successfully"
    assert INCIDENT.search(last["content"]["parts"][0])
    assert answer.text.rstrip().endswith("data: [DONE]")


def test_chatgpt_web_email_is_redacted_upstream_and_restored_in_the_snapshots(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    answer = ask_chatgpt(client, f"Draft a thank-you note to {EMAIL}")
    sent = upstream.received[-1]["body"]["messages"][0]["content"]["parts"][0]
    assert sent == "Draft a thank-you note to [EMAIL_1]"
    assert chatgpt_text(answer) == f"You said: Draft a thank-you note to {EMAIL}"


def test_claude_web_clean_prompt_reaches_the_service_and_its_answer_the_ui(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    answer = ask_claude(client, "Explain TCP slow start briefly")
    assert upstream.received[-1]["body"]["prompt"] == "Explain TCP slow start briefly"
    assert claude_text(answer) == "You said: Explain TCP slow start briefly"


def test_claude_web_key_is_blocked_with_completion_events_naming_the_incident(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    answer = ask_claude(client, f"aws_access_key_id={KEY} why is S3 denying me?")
    assert len(upstream.received) == before
    events = sse_data(answer.text)
    assert {e["type"] for e in events} == {"completion"}
    assert events[-1]["stop_reason"] == "stop_sequence"
    assert INCIDENT.search(claude_text(answer))


def test_claude_web_email_is_redacted_upstream_and_restored_in_the_completion_events(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    answer = ask_claude(client, f"Is {EMAIL} a valid address?")
    assert upstream.received[-1]["body"]["prompt"] == "Is [EMAIL_1] a valid address?"
    assert claude_text(answer) == f"You said: Is {EMAIL} a valid address?"


def test_azure_openai_clean_prompt_reaches_the_deployment_unchanged(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    answer = ask_azure(client, "List three prime numbers")
    got = upstream.received[-1]
    assert got["path"].startswith("/openai/deployments/gpt4o-prod/chat/completions?api-version=")
    assert got["body"]["messages"][0]["content"] == "List three prime numbers"
    assert answer.json()["choices"][0]["message"]["content"] == "You said: List three prime numbers"


def test_azure_openai_key_is_blocked_with_a_chat_completion_naming_the_incident(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    answer = ask_azure(client, f"export AWS_ACCESS_KEY_ID={KEY}")
    assert len(upstream.received) == before
    content = answer.json()["choices"][0]["message"]["content"]
    assert INCIDENT.search(content)
    assert answer.headers["x-dlpproxy-incident"] in content


def test_azure_openai_tenant_receives_an_email_as_the_policy_allows_pii_there(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    answer = ask_azure(client, f"Translate: contact {EMAIL}")
    assert upstream.received[-1]["body"]["messages"][0]["content"] == f"Translate: contact {EMAIL}"
    content = answer.json()["choices"][0]["message"]["content"]
    assert content == f"You said: Translate: contact {EMAIL}"


def test_uploaded_csv_with_a_key_is_blocked_before_the_service(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    csv = f"name,access_key\nci-bot,{KEY}\n".encode()
    answer = upload(client, "keys.csv", csv, "text/csv")
    assert answer.status_code == 403
    assert len(upstream.received) == before
    assert answer.json()["error"]["incident_id"] == answer.headers["x-dlpproxy-incident"]


def test_uploaded_csv_with_an_email_is_redacted_inside_the_file(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    csv = f"name,email\nSeoyeon Lim,{EMAIL}\n".encode()
    answer = upload(client, "contacts.csv", csv, "text/csv")
    assert answer.status_code == 200
    raw = upstream.received[-1]["raw"]
    assert b"Seoyeon Lim,[EMAIL_1]\n" in raw
    assert EMAIL.encode() not in raw


def test_uploaded_docx_with_an_email_is_blocked_as_extracted_text_cannot_be_rewritten(
    client: httpx.Client, upstream: FakeAIService, proxy: Proxy
) -> None:
    before = len(upstream.received)
    answer = upload(client, "memo.docx", docx_with(f"Send the figures to {EMAIL}"), DOCX_TYPE)
    assert answer.status_code == 403
    assert len(upstream.received) == before
    event = proxy.event(answer.headers["x-dlpproxy-incident"])
    assert event["action"] == "block"
    assert "cannot be rewritten" in event["reason"]


def test_audit_store_holds_no_trace_of_the_planted_values(proxy: Proxy) -> None:
    ids = [e["id"] for e in proxy.events()]
    assert ids
    proxy.event(ids[-1])
    stored = b"".join(p.read_bytes() for p in proxy.folder.glob("audit.db*"))
    assert KEY.encode() not in stored
    assert EMAIL.encode() not in stored


@pytest.fixture(scope="module")
def authed_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService
) -> Iterator[Proxy]:
    """A second proxy that asks for Basic proxy credentials checked against an htpasswd file."""
    folder = tmp_path_factory.mktemp("authed")
    htpasswd = folder / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"{USER}:{hashed}\n")
    running = start_proxy(folder / "proxy", upstream.port, ["--proxyauth", f"@{htpasswd}"])
    yield running
    running.stop()


def authed_client(proxy: Proxy, user: str, password: str) -> httpx.Client:
    url = f"http://{user}:{password}@127.0.0.1:{proxy.port}"
    return httpx.Client(proxy=url, verify=proxy.ssl_context(), timeout=60)


def test_proxy_without_credentials_answers_407(authed_proxy: Proxy) -> None:
    with httpx.Client(proxy=authed_proxy.url, timeout=30) as plain:
        answer = plain.get("http://chatgpt.com/")
    assert answer.status_code == 407
    assert answer.headers["proxy-authenticate"].startswith("Basic")


def test_tls_tunnel_without_credentials_is_refused_with_407(authed_proxy: Proxy) -> None:
    with authed_proxy.client() as anonymous, pytest.raises(httpx.ProxyError, match="407"):
        ask_azure(anonymous, "hello")


def test_wrong_password_is_refused_with_407(authed_proxy: Proxy) -> None:
    with (
        authed_client(authed_proxy, USER, "wrong password") as wrong,
        pytest.raises(httpx.ProxyError, match="407"),
    ):
        ask_azure(wrong, "hello")


def test_authenticated_user_is_named_in_the_audit_event(
    authed_proxy: Proxy, upstream: FakeAIService
) -> None:
    with authed_client(authed_proxy, USER, PASSWORD) as signed_in:
        answer = ask_azure(signed_in, f"my key {KEY} leaks?")
    incident = answer.headers["x-dlpproxy-incident"]
    event = authed_proxy.event(incident)
    assert event["user"] == USER
    assert event["action"] == "block"


def test_authenticated_user_clean_prompt_reaches_the_service(
    authed_proxy: Proxy, upstream: FakeAIService
) -> None:
    with authed_client(authed_proxy, USER, PASSWORD) as signed_in:
        answer = ask_azure(signed_in, "What is 17 times 3?")
    assert answer.json()["choices"][0]["message"]["content"] == "You said: What is 17 times 3?"
    assert "proxy-authorization" not in {k.lower() for k in upstream.received[-1]["headers"]}


def test_proxy_log_shows_no_unhandled_error(proxy: Proxy, authed_proxy: Proxy) -> None:
    for running in (proxy, authed_proxy):
        assert running.alive()
        assert "Traceback" not in running.log


@pytest.fixture(scope="module")
def ldap_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService
) -> Iterator[Proxy]:
    """A proxy that checks Basic proxy credentials against a real LDAP server (ldaptor)."""
    folder = tmp_path_factory.mktemp("ldap")
    port_file = folder / "ldap.port"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.ldap_server", str(port_file)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(folder / "ldap.log").open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not port_file.exists() and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.1)
    if not port_file.exists():
        server.kill()
        pytest.fail(f"LDAP server did not start: {(folder / 'ldap.log').read_text()}")
    spec = (
        f"ldap:127.0.0.1:{port_file.read_text()}:{ldap_server.SERVICE_DN}:"
        f"{ldap_server.SERVICE_PASSWORD}:{ldap_server.PEOPLE}"
    )
    running = start_proxy(folder / "proxy", upstream.port, ["--proxyauth", spec])
    yield running
    running.stop()
    server.terminate()
    server.wait(timeout=10)


def test_ldap_user_is_authenticated_and_named_in_the_audit_event(ldap_proxy: Proxy) -> None:
    with authed_client(ldap_proxy, ldap_server.USER, ldap_server.PASSWORD) as signed_in:
        answer = ask_azure(signed_in, f"my key {KEY} leaks?")
    event = ldap_proxy.event(answer.headers["x-dlpproxy-incident"])
    assert event["user"] == ldap_server.USER
    assert event["action"] == "block"


@pytest.mark.parametrize(("user", "password"), [("minji", "wrong"), ("nobody", "s3cret pass")])
def test_ldap_wrong_password_or_unknown_user_is_refused_with_407(
    ldap_proxy: Proxy, user: str, password: str
) -> None:
    with (
        authed_client(ldap_proxy, user, password) as wrong,
        pytest.raises(httpx.ProxyError, match="407"),
    ):
        ask_azure(wrong, "hello")
    assert ldap_proxy.alive()
