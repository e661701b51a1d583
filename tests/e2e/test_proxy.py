"""End to end: the real `dlpproxy run` (mitmdump) on 127.0.0.1, a real HTTPS stand-in for
api.openai.com on loopback, and httpx as the client trusting the proxy's CA."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import FakeOpenAI, self_signed

KEY = "AKIAZ7QRST2VWX3YB4CD"
EMAIL = "jiwoo.park@example-corp.co.kr"
URL = "https://api.openai.com/v1/chat/completions"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("e2e")
    cert, key = self_signed(tmp, ["api.openai.com", "127.0.0.1"])
    upstream = FakeOpenAI(cert, key)
    port = free_port()
    cmd = [
        sys.executable, "-m", "dlpproxy", "run", "--port", str(port), "--ca-dir", str(tmp / "ca"),
        "--audit-db", str(tmp / "audit.db"), "--ssl-insecure",
        "--set", f"dlp_resolve=api.openai.com=127.0.0.1:{upstream.port}",
    ]  # fmt: skip
    log = (tmp / "proxy.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b"dlpproxy ready" in (tmp / "proxy.log").read_bytes() or proc.poll() is not None:
            break
        time.sleep(0.2)
    if proc.poll() is not None:
        pytest.fail((tmp / "proxy.log").read_text())
    ca = ssl.create_default_context(cafile=str(tmp / "ca" / "mitmproxy-ca-cert.pem"))
    client = httpx.Client(proxy=f"http://127.0.0.1:{port}", verify=ca, timeout=30)
    yield {"client": client, "upstream": upstream, "tmp": tmp, "proc": proc, "port": port}
    client.close()
    proc.terminate()
    proc.wait(timeout=30)
    upstream.stop()


def ask(stack: dict[str, object], content: str, stream: bool = False) -> httpx.Response:
    client = stack["client"]
    assert isinstance(client, httpx.Client)
    body = {"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": content}]}
    return client.post(URL, json=body, headers={"authorization": "Bearer sk-test"})


def upstream_of(stack: dict[str, object]) -> FakeOpenAI:
    up = stack["upstream"]
    assert isinstance(up, FakeOpenAI)
    return up


def test_clean_prompt_passes_unchanged(stack: dict[str, object]) -> None:
    before = len(upstream_of(stack).received)
    answer = ask(stack, "What is the capital of France?")
    assert answer.status_code == 200
    assert (
        answer.json()["choices"][0]["message"]["content"]
        == "You said: What is the capital of France?"
    )
    assert (
        upstream_of(stack).received[before]["body"]["messages"][0]["content"]
        == "What is the capital of France?"
    )


def test_planted_aws_key_is_blocked_with_a_native_answer(stack: dict[str, object]) -> None:
    before = len(upstream_of(stack).received)
    answer = ask(stack, f"why does boto fail with aws_access_key_id = {KEY} ?")
    assert len(upstream_of(stack).received) == before
    incident = answer.headers.get("x-dlpproxy-incident")
    assert incident
    text = json.dumps(answer.json())
    assert "blocked" in text and incident in text


def test_email_is_redacted_upstream_and_restored_in_the_answer(stack: dict[str, object]) -> None:
    answer = ask(stack, f"Write a polite reminder to {EMAIL}")
    sent = upstream_of(stack).received[-1]["body"]["messages"][0]["content"]
    assert sent == "Write a polite reminder to [EMAIL_1]"
    assert (
        answer.json()["choices"][0]["message"]["content"]
        == f"You said: Write a polite reminder to {EMAIL}"
    )


def test_streamed_answer_is_restored_across_chunks(stack: dict[str, object]) -> None:
    answer = ask(stack, f"Stream a note to {EMAIL} please", stream=True)
    assert EMAIL not in json.dumps(upstream_of(stack).received[-1]["body"])
    text = ""
    for block in answer.text.split("\n\n"):
        if block.startswith("data: {"):
            text += json.loads(block[6:])["choices"][0]["delta"].get("content", "")
    assert text == f"You said: Stream a note to {EMAIL} please"


def test_malformed_body_to_an_ai_host_is_blocked(stack: dict[str, object]) -> None:
    client = stack["client"]
    assert isinstance(client, httpx.Client)
    before = len(upstream_of(stack).received)
    answer = client.post(
        URL, content=b'{"messages": [', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 403
    assert len(upstream_of(stack).received) == before


def test_non_ai_host_is_tunnelled_without_interception(
    stack: dict[str, object], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, ["127.0.0.1"])
    other = FakeOpenAI(cert, key)
    try:
        own = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(proxy=f"http://127.0.0.1:{stack['port']}", verify=own) as direct:
            # Verifying against the server's own certificate only works if nobody intercepted.
            assert direct.get(f"https://127.0.0.1:{other.port}/health").json() == {"ok": True}
    finally:
        other.stop()


def test_audit_db_holds_events_and_no_planted_value(stack: dict[str, object]) -> None:
    ask(stack, f"one more with {KEY} and {EMAIL}")
    time.sleep(1.0)
    tmp = stack["tmp"]
    assert isinstance(tmp, Path)
    import sqlite3

    db = sqlite3.connect(str(tmp / "audit.db"))
    actions = [r[0] for r in db.execute("SELECT action FROM events ORDER BY ts")]
    db.close()
    assert "block" in actions and "redact" in actions and "allow" in actions
    for file in tmp.glob("audit.db*"):
        raw = file.read_bytes()
        assert KEY.encode() not in raw and EMAIL.encode() not in raw, file.name


def test_ca_export_writes_pem_and_der_of_the_proxy_ca(
    stack: dict[str, object], tmp_path: Path
) -> None:
    from cryptography import x509

    tmp = stack["tmp"]
    assert isinstance(tmp, Path)
    done = subprocess.run(
        [sys.executable, "-m", "dlpproxy", "ca", "export", "--ca-dir", str(tmp / "ca"),
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pem = x509.load_pem_x509_certificate((tmp_path / "dlpproxy-ca.pem").read_bytes())
    der = x509.load_der_x509_certificate((tmp_path / "dlpproxy-ca.der").read_bytes())
    served = x509.load_pem_x509_certificate((tmp / "ca" / "mitmproxy-ca-cert.pem").read_bytes())
    assert pem == der == served
