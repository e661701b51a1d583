"""The gateway test stack (no tests here): a recording stand-in provider, the gateway in-process,
policy and gateway.yaml writers.

`Provider` is a real plain-HTTP server on 127.0.0.1 answering like OpenAI and Anthropic (the
formats of tests/e2e/servers.py: it echoes `You said: <last user text>`, streams in 5-character
pieces with chunked transfer encoding) and keeping every request it gets in `received`, so a test
can prove that a prompt never reached it. `mode` makes it fail: `429`, `503`, `drop` (hangs up
without an answer), `stall` (answers after STALL_S), `cut` (a stream that stops midway without
its end), `cut0` (a stream that stops before its first event), `slow` (one event every 0.2 s;
`gone` is set when the gateway hangs up). The gateway runs on its own asyncio loop in a thread, as
`dlpproxy gateway` runs it (`build_gateway` + `serve`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai

from dlpproxy.gateway.config import new_key
from dlpproxy.gateway.server import build_gateway, serve
from dlpproxy.settings import Settings
from tests.e2e.servers import FakeAIService, _Handler

PROVIDER_KEY_ENV = "DLPGW_TEST_PROVIDER_KEY"
PROVIDER_KEY = "sk-real-provider-key-0123456789"
BANNER = "[company model]"
KEY = "AKIAR5TQ2MXW7KZP4VNJ"  # synthetic: AKIA + 16 of [A-Z2-7]
SECRET_PROMPT = f"Why does boto3 refuse my key {KEY} with secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9?"
CLEAN_PROMPT = "Name three rivers in Korea."
EMAIL = "minji.kang@hanbit-semicon.co.kr"
EMBEDDING = [0.25, -0.5, 0.125]
STALL_S = 2.5
OPENAI_MODELS = ("gpt-4o-mini", "gpt-4.1", "text-embedding-3-small")
ANTHROPIC_MODELS = ("claude-sonnet-4-6",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Provider(FakeAIService):
    """Plain HTTP stand-in for api.openai.com and api.anthropic.com (see the module text)."""

    def __init__(self) -> None:  # plain HTTP: FakeAIService's TLS set-up is skipped on purpose
        ThreadingHTTPServer.__init__(self, ("127.0.0.1", 0), _ProviderHandler)
        self.received: list[dict[str, Any]] = []
        self.mode = "ok"
        self.gone = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def since(self, before: int) -> list[dict[str, Any]]:
        return self.received[before:]


class _ProviderHandler(_Handler):
    server: Provider

    def do_POST(self) -> None:
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):  # the gateway hung up: expected in tests
            self.server.gone.set()
            self.close_connection = True

    def _answer(self) -> None:
        raw = self._body()
        mode = self.server.mode
        if self.path.endswith("/embeddings"):
            self.server.received.append({"path": self.path, "headers": dict(self.headers),
                                         "raw": raw, "body": json.loads(raw)})  # fmt: skip
            vector = {"object": "embedding", "index": 0, "embedding": EMBEDDING}
            doc = {"object": "list", "model": "emb", "data": [vector],
                   "usage": {"prompt_tokens": 1, "total_tokens": 1}}  # fmt: skip
            self._send(200, "application/json", json.dumps(doc).encode())
            return
        reply = self.server.answer(self.path, dict(self.headers), raw, "1.1")
        if mode == "stall":  # answer only after the gateway has given up waiting
            time.sleep(STALL_S)
        if mode == "drop":  # hang up without an answer, as a crashed provider does
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode in ("429", "503"):
            doc = {"error": {"message": f"provider says {mode}", "type": "x", "code": None}}
            self._send(int(mode), "application/json", json.dumps(doc).encode(),
                       {"retry-after": "7"})  # fmt: skip
            return
        if not reply.stream:
            self._send(200, reply.content_type, b"".join(reply.chunks))
            return
        self.send_response(200)
        self.send_header("content-type", reply.content_type)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        events = {"cut": reply.chunks[:3], "cut0": []}.get(mode, reply.chunks)
        if mode == "slow":
            events = [*events[:1], *(events[1:2] * 60), *events[2:]]
        for event in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            if mode == "slow":
                time.sleep(0.2)
        if mode not in ("cut", "cut0"):
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True


def write_policy(folder: Path, local_base_url: str, local_model: str, **extra: Any) -> Path:
    """Secrets are rerouted to the local model, contact data redacted; `extra` sets top fields."""
    top = "".join(f"{k}: {json.dumps(v)}\n" for k, v in extra.items())
    path = folder / "policy.yaml"
    path.write_text(
        "version: 1\n" + top
        + "local_models:\n  company:\n"
        + f"    base_url: {local_base_url}\n    model: {local_model}\n    timeout_s: 60\n"
        + f"reroute:\n  model: company\n  banner: '{BANNER}'\n"
        + "rules:\n"
        + "  - {id: reroute-secrets, category: secret, action: reroute}\n"
        + "  - {id: redact-contact-data, category: pii, type: email, action: redact}\n"
    )  # fmt: skip
    return path


def write_config(
    folder: Path, provider_base_url: str, fallback: bool = False, timeout_s: float = 30.0
) -> tuple[Path, str]:
    """gateway.yaml for both providers at `provider_base_url`, and one app key (returned)."""
    key, line = new_key("billing-bot", ("finance",))
    text = f"version: 1\nfallback_to_local: {'true' if fallback else 'false'}\nproviders:\n"
    for name, offered in (("openai", OPENAI_MODELS), ("anthropic", ANTHROPIC_MODELS)):
        text += (
            f"  {name}:\n    base_url: {provider_base_url}\n    api_key_env: {PROVIDER_KEY_ENV}\n"
            f"    models: [{', '.join(offered)}]\n"
            f"    timeout_s: {timeout_s}\n    connect_timeout_s: 2\n"
        )
    path = folder / "gateway.yaml"
    path.write_text(f"{text}keys:\n{line}\n")
    return path, key


def start_gateway(
    folder: Path, provider_url: str, local_url: str, local_model: str = "tiny",
    fallback: bool = False, detectors: str = "secrets", timeout_s: float = 30.0, **policy: Any,
) -> RunningGateway:  # fmt: skip
    """A gateway in front of `provider_url` whose policy reroutes secrets to `local_url`."""
    config, key = write_config(folder, provider_url, fallback, timeout_s)
    return RunningGateway(folder, config, write_policy(folder, local_url, local_model, **policy),
                          key, detectors)  # fmt: skip


class RunningGateway:
    """`build_gateway` + `serve` on an asyncio loop in a thread; `stop()` flushes the audit.
    `key` is the app key the tests call it with."""

    def __init__(
        self, folder: Path, config: Path, policy: Path, key: str, detectors: str = "secrets"
    ) -> None:
        os.environ[PROVIDER_KEY_ENV] = PROVIDER_KEY
        self.key = key
        self.audit_db = folder / "audit.db"
        self.gateway = build_gateway(config, policy, self.audit_db, detectors, Settings())
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.port = 0
        started = threading.Event()

        def ready(server: Any) -> None:
            self.port = server.port
            started.set()

        async def main() -> None:
            self.stop_event = asyncio.Event()
            await serve(self.gateway, "127.0.0.1", 0, ready, self.stop_event)

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),))
        self.thread.start()
        assert started.wait(60), "the gateway did not start"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def openai(self, key: str = "") -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.base_url, api_key=key or self.key, max_retries=0, timeout=120
        )

    def anthropic(self, key: str = "") -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.root, api_key=key or self.key, max_retries=0, timeout=120
        )

    def post(self, path: str, body: bytes | dict[str, Any], ctype: str = "application/json",
             key: str = "") -> httpx.Response:  # fmt: skip
        """POST `body` (JSON unless bytes) to `path` with the app key as a bearer token."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"content-type": ctype, "authorization": f"Bearer {key or self.key}"}
        return httpx.post(self.root + path, content=raw, headers=headers, timeout=120)

    def stop(self) -> None:
        assert self.stop_event is not None
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        self.loop.close()

    def events(
        self, where: str = "1", wait_for: int = 1, wait_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """Audit rows matching `where`, waiting until at least `wait_for` are stored."""
        deadline = time.monotonic() + wait_s
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = _rows(self.audit_db, where)
            if len(rows) >= wait_for:
                break
            time.sleep(0.1)
        return rows

    def event(self, incident: str) -> dict[str, Any]:
        rows = self.events(f"id = '{incident}'")
        assert rows, f"no audit event {incident}"
        return rows[0]


def _rows(db_path: Path, where: str) -> list[dict[str, Any]]:
    if not db_path.exists():
        return []
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(f"SELECT * FROM events WHERE {where}")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


class MalformedLocalModel(ThreadingHTTPServer):
    """A 'local model' serving only model `broken`, which answers with broken JSON (and broken
    SSE); a request for any other model gets the 404 an OpenAI-compatible server sends."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _MalformedHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _MalformedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._send(b'{"object": "list", "data": [{"id": "broken", "object": "model"')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
        if body.get("model") != "broken":
            doc = {"error": {"message": f"model '{body.get('model')}' not found", "code": 404}}
            self._send(json.dumps(doc).encode(), status=404)
        elif body.get("stream"):
            self._send(b"data: {not json at all\n\ndata: [DONE]\n\n", "text/event-stream")
        else:
            self._send(b'{"id": "x", "choices": [{"message": ', "application/json")

    def _send(self, body: bytes, ctype: str = "application/json", status: int = 200) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
