"""WebSocket messages to an AI host through the real proxy, with a real WebSocket client and server.

A TLS WebSocket server on loopback stands in for chatgpt.com and records every message it gets;
the `websockets` client connects through the proxy (HTTP CONNECT) trusting the proxy's CA. Clean
messages pass, a message with a planted key never reaches the server (the client is told why),
and an e-mail address reaches it only as a placeholder.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from tests.e2e.conftest import Proxy, self_signed, start_proxy
from tests.e2e.servers import FakeAIService

KEY = "AKIAR5TQ2MXW7KZP4VNJ"  # synthetic
EMAIL = "minji.kang@hanbit-semicon.co.kr"
URL = "wss://chatgpt.com/backend-api/ws"


class EchoService:
    """A WebSocket server that records each text message and answers `echo: <message>`."""

    def __init__(self, folder: Path) -> None:
        cert, key = self_signed(folder, ["chatgpt.com", "127.0.0.1"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.received: list[str] = []
        self.server: Server = serve(self._handle, "127.0.0.1", 0, ssl=context)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, ws: ServerConnection) -> None:
        for message in ws:
            text = message if isinstance(message, str) else message.decode()
            self.received.append(text)
            ws.send(f"echo: {text}")

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoService]:
    service = EchoService(tmp_path_factory.mktemp("ws"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def ws_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService, echo: EchoService
) -> Iterator[Proxy]:
    folder = tmp_path_factory.mktemp("ws-proxy")
    running = start_proxy(folder, upstream.port, ports={"chatgpt.com": echo.port})
    yield running
    running.stop()


def talk(proxy: Proxy, message: str) -> str:
    """Send one message over a fresh connection through the proxy; the first answer back."""
    with connect(URL, proxy=proxy.url, ssl=proxy.ssl_context(), open_timeout=30) as ws:
        ws.send(message)
        answer = ws.recv(timeout=30)
    return answer if isinstance(answer, str) else answer.decode()


def test_clean_message_reaches_the_service(ws_proxy: Proxy, echo: EchoService) -> None:
    answer = talk(ws_proxy, '{"type": "message", "text": "hello there"}')
    assert answer == 'echo: {"type": "message", "text": "hello there"}'
    assert echo.received[-1] == '{"type": "message", "text": "hello there"}'


def test_message_with_a_key_is_dropped_and_the_client_told(
    ws_proxy: Proxy, echo: EchoService
) -> None:
    before = len(echo.received)
    answer = talk(ws_proxy, f'{{"type": "message", "text": "my key is {KEY}"}}')
    found = re.search(r"dlpproxy blocked a message \(incident ([0-9a-f]{16})\)", answer)
    assert found, answer
    assert len(echo.received) == before
    assert not any(KEY in m for m in echo.received)
    event = ws_proxy.event(found.group(1))
    assert event["action"] == "block"
    assert "secret" in event["categories"]


def test_email_in_a_message_reaches_the_service_as_a_placeholder(
    ws_proxy: Proxy, echo: EchoService
) -> None:
    answer = talk(ws_proxy, f"write to {EMAIL} about the invoice")
    assert echo.received[-1] == "write to [EMAIL_1] about the invoice"
    assert EMAIL not in answer
