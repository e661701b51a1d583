"""The mitmproxy addon's hooks with mitmproxy's own test harness (taddons, tflow)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from mitmproxy import connection, http, tls
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from dlpproxy.proxy.addon import DlpAddon
from dlpproxy.proxy.inspector import Verdict

ROOT = Path(__file__).resolve().parent.parent
KEY = "AKIAZ7QRST2VWX3YB4CD"
EMAIL = "jiwoo.park@example-corp.co.kr"


def run(tmp_path: Path, body: Any) -> Any:
    """Run `body(addon)` inside a configured taddons context; the addon is closed afterwards."""

    async def main() -> Any:
        addon = DlpAddon()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, dlp_audit_db=str(tmp_path / "audit.db"),
                           dlp_detectors="pii,keywords,secrets")  # fmt: skip
            try:
                return await body(addon)
            finally:
                await addon.done()

    return asyncio.run(main())


def chat_flow(content: str, host: str = "api.openai.com") -> http.HTTPFlow:
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]})
    req = http.Request.make("POST", f"https://{host}/v1/chat/completions", body,
                            {"content-type": "application/json"})  # fmt: skip
    return tflow.tflow(req=req)


def hello(sni: str) -> tls.ClientHelloData:
    client = connection.Client(peername=("10.0.0.5", 50000), sockname=("127.0.0.1", 8080))
    context = type("Ctx", (), {"server": connection.Server(address=(sni, 443)), "client": client})
    data = tls.ClientHelloData(context, type("Hello", (), {"sni": sni})())  # type: ignore[arg-type]
    return data


def test_only_ai_hosts_are_decrypted(tmp_path: Path) -> None:
    async def body(addon: DlpAddon) -> tuple[bool, bool]:
        other, ai = hello("intranet.example.com"), hello("api.openai.com")
        addon.tls_clienthello(other)
        addon.tls_clienthello(ai)
        return other.ignore_connection, ai.ignore_connection

    assert run(tmp_path, body) == (True, False)


def test_request_with_a_key_gets_a_native_block_answer(tmp_path: Path) -> None:
    async def body(addon: DlpAddon) -> http.HTTPFlow:
        flow = chat_flow(f"key {KEY}")
        await addon.request(flow)
        return flow

    flow = run(tmp_path, body)
    assert flow.response is not None
    answer = json.loads(flow.response.content)
    assert answer["object"] == "chat.completion"
    verdict = flow.metadata["dlpproxy"]
    assert isinstance(verdict, Verdict) and verdict.decision.action == "block"
    assert verdict.event.id in answer["choices"][0]["message"]["content"]


def test_request_with_an_email_is_rewritten_and_the_answer_restored(tmp_path: Path) -> None:
    async def body(addon: DlpAddon) -> http.HTTPFlow:
        flow = chat_flow(f"write to {EMAIL}")
        await addon.request(flow)
        sent = json.loads(flow.request.content or b"")["messages"][0]["content"]
        assert sent == "write to [EMAIL_1]"
        reply = {"choices": [{"message": {"content": "Dear [EMAIL_1], hello"}}]}
        flow.response = http.Response.make(
            200, json.dumps(reply), {"content-type": "application/json"}
        )
        addon.responseheaders(flow)
        addon.response(flow)
        return flow

    flow = run(tmp_path, body)
    assert (
        json.loads(flow.response.content)["choices"][0]["message"]["content"]
        == f"Dear {EMAIL}, hello"
    )


def test_non_ai_request_is_left_alone(tmp_path: Path) -> None:
    async def body(addon: DlpAddon) -> http.HTTPFlow:
        flow = chat_flow(f"key {KEY}", host="intranet.example.com")
        await addon.request(flow)
        return flow

    flow = run(tmp_path, body)
    assert flow.response is None and "dlpproxy" not in flow.metadata


def ws_flow(text: str) -> http.HTTPFlow:
    flow = tflow.twebsocketflow(messages=False)
    flow.request.host = "chatgpt.com"
    assert flow.websocket is not None
    flow.websocket.messages.append(WebSocketMessage(Opcode.TEXT, True, text.encode()))
    return flow


def test_websocket_message_with_a_key_is_dropped(tmp_path: Path) -> None:
    async def body(addon: DlpAddon) -> WebSocketMessage:
        flow = ws_flow(json.dumps({"prompt": f"my key {KEY}"}))
        await addon.websocket_message(flow)
        assert flow.websocket is not None
        return flow.websocket.messages[-1]

    assert run(tmp_path, body).dropped


def test_websocket_message_with_an_email_is_redacted(tmp_path: Path) -> None:
    async def body(addon: DlpAddon) -> WebSocketMessage:
        flow = ws_flow(json.dumps({"prompt": f"mail {EMAIL} today"}))
        await addon.websocket_message(flow)
        assert flow.websocket is not None
        return flow.websocket.messages[-1]

    message = run(tmp_path, body)
    assert json.loads(message.content)["prompt"] == "mail [EMAIL_1] today"
