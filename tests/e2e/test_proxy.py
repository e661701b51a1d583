"""End to end: the real `dlpproxy run` (mitmdump) on 127.0.0.1, a real HTTPS stand-in for
api.openai.com on loopback, and httpx as the client trusting the proxy's CA."""

from __future__ import annotations

import json
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Proxy, self_signed
from tests.e2e.servers import FakeAIService

KEY = "AKIAZ7QRST2VWX3YB4CD"
EMAIL = "jiwoo.park@example-corp.co.kr"
URL = "https://api.openai.com/v1/chat/completions"


def ask(client: httpx.Client, content: str, stream: bool = False) -> httpx.Response:
    body = {"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": content}]}
    return client.post(URL, json=body, headers={"authorization": "Bearer sk-test"})


def test_clean_prompt_passes_unchanged(client: httpx.Client, upstream: FakeAIService) -> None:
    before = len(upstream.received)
    answer = ask(client, "What is the capital of France?")
    assert answer.status_code == 200
    assert (
        answer.json()["choices"][0]["message"]["content"]
        == "You said: What is the capital of France?"
    )
    assert (
        upstream.received[before]["body"]["messages"][0]["content"]
        == "What is the capital of France?"
    )


def test_planted_aws_key_is_blocked_with_a_native_answer(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    answer = ask(client, f"why does boto fail with aws_access_key_id = {KEY} ?")
    assert len(upstream.received) == before
    incident = answer.headers.get("x-dlpproxy-incident")
    assert incident
    text = json.dumps(answer.json())
    assert "blocked" in text and incident in text


def test_email_is_redacted_upstream_and_restored_in_the_answer(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    answer = ask(client, f"Write a polite reminder to {EMAIL}")
    sent = upstream.received[-1]["body"]["messages"][0]["content"]
    assert sent == "Write a polite reminder to [EMAIL_1]"
    assert (
        answer.json()["choices"][0]["message"]["content"]
        == f"You said: Write a polite reminder to {EMAIL}"
    )


def test_streamed_answer_is_restored_across_chunks(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    answer = ask(client, f"Stream a note to {EMAIL} please", stream=True)
    assert EMAIL not in json.dumps(upstream.received[-1]["body"])
    text = ""
    for block in answer.text.split("\n\n"):
        if block.startswith("data: {"):
            text += json.loads(block[6:])["choices"][0]["delta"].get("content", "")
    assert text == f"You said: Stream a note to {EMAIL} please"


def test_malformed_body_to_an_ai_host_is_blocked(
    client: httpx.Client, upstream: FakeAIService
) -> None:
    before = len(upstream.received)
    answer = client.post(
        URL, content=b'{"messages": [', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 403
    assert len(upstream.received) == before


def test_non_ai_host_is_tunnelled_without_interception(proxy: Proxy, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, ["127.0.0.1"])
    other = FakeAIService(cert, key)
    try:
        own = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(proxy=proxy.url, verify=own) as direct:
            # Verifying against the server's own certificate only works if nobody intercepted.
            assert direct.get(f"https://127.0.0.1:{other.port}/health").json() == {"ok": True}
    finally:
        other.stop()


def test_audit_db_holds_events_and_no_planted_value(proxy: Proxy, client: httpx.Client) -> None:
    ask(client, f"one more with {KEY} and {EMAIL}")
    time.sleep(1.0)
    db = sqlite3.connect(str(proxy.audit_db))
    actions = [r[0] for r in db.execute("SELECT action FROM events ORDER BY ts")]
    db.close()
    assert "block" in actions and "redact" in actions and "allow" in actions
    for file in proxy.folder.glob("audit.db*"):
        raw = file.read_bytes()
        assert KEY.encode() not in raw and EMAIL.encode() not in raw, file.name


def test_ca_export_writes_pem_and_der_of_the_proxy_ca(proxy: Proxy, tmp_path: Path) -> None:
    from cryptography import x509

    done = subprocess.run(
        [sys.executable, "-m", "dlpproxy", "ca", "export", "--ca-dir", str(proxy.folder / "ca"),
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pem = x509.load_pem_x509_certificate((tmp_path / "dlpproxy-ca.pem").read_bytes())
    der = x509.load_der_x509_certificate((tmp_path / "dlpproxy-ca.der").read_bytes())
    served = x509.load_pem_x509_certificate(proxy.ca_file.read_bytes())
    assert pem == der == served
