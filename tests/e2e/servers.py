"""Real loopback servers for end-to-end tests: one HTTPS stand-in for several AI services.

`FakeAIService` answers in each service's own wire format, echoing the last user text as
`You said: <text>` so a test can check what the service received and what the client got back:
OpenAI Chat Completions (JSON and SSE), OpenAI Responses (JSON and its SSE event sequence),
Anthropic Messages (JSON and its SSE event sequence), Gemini generateContent /
streamGenerateContent (SSE with `alt=sse`, else a JSON array), and the web UIs' SSE answers of
ChatGPT (`/backend-api/conversation`: growing message snapshots) and Claude
(`.../chat_conversations/{id}/completion`: `completion` events). Azure OpenAI paths answer as
Chat Completions. Streams go out in 5-character
pieces, so a placeholder is split across events. HTTP/1.1 (chunked request bodies too) and
HTTP/2; every request is kept in `received`, decoded from its Content-Encoding.
"""

from __future__ import annotations

import gzip
import json
import re
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import brotli
import h2.config
import h2.connection
import h2.events
import zstandard

PIECE = 5
# A request header asking the stand-in to gzip its answer when the request accepts gzip (flushed
# per SSE event when streaming), as services behind a CDN do.
ANSWER_ENCODING = "x-test-answer-encoding"
GEMINI_ROUTE = re.compile(r"/v1(?:beta)?/models/([^/:]+):(generate|streamGenerate)Content")
CHATGPT_WEB_ROUTE = re.compile(r"/backend-(?:api|anon)/(?:f/)?conversation")
CLAUDE_WEB_ROUTE = re.compile(r"/api/organizations/[^/]+/chat_conversations/[^/]+/completion")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the stand-in answers: a whole JSON body, or SSE events sent one by one."""

    content_type: str
    chunks: list[bytes]
    stream: bool = False


class FakeAIService(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 answering like OpenAI, Anthropic and Gemini; keeps what it received.

    It speaks HTTP/1.1 and, to clients that offer it by ALPN, HTTP/2 (mitmproxy offers h2 to
    the service only when its own client did). Each entry of `received`: `path`, `host` (which
    service was asked), `headers`, `http` ("1.1" or "2"), `raw` (the body decoded from its
    Content-Encoding) and `body` (the parsed JSON, or None when the body was not JSON).
    """

    daemon_threads = True

    def __init__(self, cert: Path, key: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["h2", "http/1.1"])
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.received: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket) and request.selected_alpn_protocol() == "h2":
            _serve_h2(self, request)
        else:
            super().finish_request(request, client_address)

    def answer(self, path: str, headers: dict[str, str], raw: bytes, http: str) -> Reply:
        """Keep the request, then answer it in the format of the service its path belongs to."""
        lowered = {k.lower(): v for k, v in headers.items()}
        raw = decoded(raw, lowered.get("content-encoding", ""))
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        host = lowered.get("host") or lowered.get(":authority", "")
        self.received.append(
            {"path": path, "host": host, "headers": headers, "http": http, "raw": raw,
             "body": body}
        )  # fmt: skip
        route = urlsplit(path).path
        echo = f"You said: {last_user_text(route, body)}"
        doc = body if isinstance(body, dict) else {}
        model = str(doc.get("model", "m"))
        stream = doc.get("stream") is True
        if CHATGPT_WEB_ROUTE.fullmatch(route):
            return Reply("text/event-stream", list(chatgpt_web_events(echo)), stream=True)
        if CLAUDE_WEB_ROUTE.fullmatch(route):
            return Reply("text/event-stream", list(claude_web_events(echo, model)), stream=True)
        gemini = GEMINI_ROUTE.fullmatch(route)
        if gemini and gemini.group(2) == "streamGenerate" and "alt=sse" not in path:
            return Reply("application/json", list(gemini_array(echo, gemini.group(1))), True)
        if gemini:
            model, stream = gemini.group(1), gemini.group(2) == "streamGenerate"
            whole, events = gemini_answer(echo, model), gemini_events(echo, model)
        elif route.endswith("/responses"):
            whole, events = responses_object(echo, model), responses_events(echo, model)
        elif route == "/v1/messages":
            whole, events = anthropic_message(echo, model), anthropic_events(echo, model)
        else:
            whole, events = chat_completion(echo, model), chat_chunks(echo, model)
        if stream:
            return Reply("text/event-stream", list(events), stream=True)
        return Reply("application/json", [json.dumps(whole).encode()])


FakeOpenAI = FakeAIService  # the first stand-in only spoke Chat Completions


def decoded(raw: bytes, encoding: str) -> bytes:
    """The body with its Content-Encoding undone (gzip, deflate, br, zstd, in order)."""
    undo: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.decompress,
        "deflate": zlib.decompress,
        "br": brotli.decompress,
        "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
        "identity": lambda data: data,
    }
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        raw = undo[coding](raw)
    return raw


def last_user_text(route: str, body: Any) -> str:
    """The text of the last user turn, in whichever service format the body is."""
    if not isinstance(body, dict):
        return ""
    if route.endswith("/responses"):
        return _text_of(_last(body.get("input")))
    if CHATGPT_WEB_ROUTE.fullmatch(route):
        parts = ((_last(body.get("messages")) or {}).get("content") or {}).get("parts") or []
        return "".join(p for p in parts if isinstance(p, str))
    if CLAUDE_WEB_ROUTE.fullmatch(route):
        return str(body.get("prompt", ""))
    if GEMINI_ROUTE.fullmatch(route):
        parts = (_last(body.get("contents")) or {}).get("parts") or []
        return "".join(p.get("text", "") for p in parts if isinstance(p, dict))
    return _text_of(_last(body.get("messages")))


def _last(items: Any) -> Any:
    return items[-1] if isinstance(items, list) and items else items


def _text_of(item: Any) -> str:
    """A string, a message's content, or the text of its content parts/blocks."""
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return ""
    content = item.get("content")
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def pieces(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)] or [""]


class _Handler(BaseHTTPRequestHandler):
    server: FakeAIService
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._send(200, "application/json", b'{"ok": true}')

    def do_POST(self) -> None:
        reply = self.server.answer(self.path, dict(self.headers), self._body(), "1.1")
        asked = self.headers.get(ANSWER_ENCODING) == "gzip"
        accepted = "gzip" in self.headers.get("accept-encoding", "")
        squeeze = _gzip_stream() if asked and accepted else None
        if not reply.stream:
            body = b"".join(reply.chunks)
            extra = {}
            if squeeze:
                body, extra = squeeze(body, zlib.Z_FINISH), {"content-encoding": "gzip"}
            self._send(200, reply.content_type, body, extra)
            return
        self.send_response(200)
        self.send_header("content-type", reply.content_type)
        if squeeze:
            self.send_header("content-encoding", "gzip")
        self.send_header("connection", "close")
        self.end_headers()
        for i, event in enumerate(reply.chunks):
            last = i == len(reply.chunks) - 1
            mode = zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
            self.wfile.write(squeeze(event, mode) if squeeze else event)
            self.wfile.flush()
        self.close_connection = True

    def _body(self) -> bytes:
        """The request body, by Content-Length or in chunks (Transfer-Encoding: chunked)."""
        if "chunked" not in self.headers.get("transfer-encoding", "").lower():
            return self.rfile.read(int(self.headers.get("content-length", "0")))
        body = bytearray()
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers
            pass
        return bytes(body)

    def _send(
        self, status: int, ctype: str, body: bytes, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _serve_h2(server: FakeAIService, sock: ssl.SSLSocket) -> None:
    """One HTTP/2 connection: each finished request gets its answer as flow control allows."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    )
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    streams: dict[int, tuple[dict[str, str], bytearray]] = {}
    unsent: dict[int, bytes] = {}
    with sock:
        while data := sock.recv(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = (dict(event.headers), bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id][1].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    headers, body = streams.pop(event.stream_id)
                    reply = server.answer(headers[":path"], headers, bytes(body), "2")
                    unsent[event.stream_id] = payload = b"".join(reply.chunks)
                    conn.send_headers(event.stream_id, [
                        (":status", "200"), ("content-type", reply.content_type),
                        ("content-length", str(len(payload))),
                    ])  # fmt: skip
                elif isinstance(event, h2.events.ConnectionTerminated):
                    return
            _send_h2_data(conn, unsent)
            sock.sendall(conn.data_to_send())


def _send_h2_data(conn: h2.connection.H2Connection, unsent: dict[int, bytes]) -> None:
    """Send as much of each answer as the peer's flow-control window takes; end finished ones."""
    for stream_id, payload in list(unsent.items()):
        while payload:
            size = min(len(payload), conn.local_flow_control_window(stream_id),
                       conn.max_outbound_frame_size)  # fmt: skip
            if size <= 0:
                break
            conn.send_data(stream_id, payload[:size])
            payload = payload[size:]
        unsent[stream_id] = payload
        if not payload:
            conn.end_stream(stream_id)
            del unsent[stream_id]


def _sse(data: dict[str, Any], event: str = "") -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def chat_completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip


def chat_chunks(text: str, model: str) -> Iterator[bytes]:
    for piece in pieces(text):
        choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
        yield _sse({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
                    "choices": [choice]})  # fmt: skip
    yield b"data: [DONE]\n\n"


def _responses_message(text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if text else []
    return {"type": "message", "id": "msg_1", "status": status, "role": "assistant",
            "content": content}  # fmt: skip


def responses_object(text: str, model: str, status: str = "completed") -> dict[str, Any]:
    output = [_responses_message(text, status)] if status == "completed" else []
    return {
        "id": "resp_1", "object": "response", "created_at": 1, "status": status,
        "model": model, "output": output, "parallel_tool_calls": True, "tool_choice": "auto",
        "tools": [], "error": None, "incomplete_details": None,
        "usage": {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": 2},
    }  # fmt: skip


def responses_events(text: str, model: str) -> Iterator[bytes]:
    """created, in_progress, item and part added, text deltas, the done events, completed."""
    seq = iter(range(1000))
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": []}

    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(seq), **fields}, kind)

    started = responses_object("", model, "in_progress")
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    yield event("response.output_item.added", output_index=0,
                item=_responses_message("", "in_progress"))  # fmt: skip
    yield event("response.content_part.added", part=part, **where)
    for piece in pieces(text):
        yield event("response.output_text.delta", delta=piece, logprobs=[], **where)
    yield event("response.output_text.done", text=text, logprobs=[], **where)
    yield event("response.content_part.done", part=part | {"text": text}, **where)
    yield event("response.output_item.done", output_index=0,
                item=_responses_message(text, "completed"))  # fmt: skip
    yield event("response.completed", response=responses_object(text, model))


def anthropic_message(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
    }  # fmt: skip


def anthropic_events(text: str, model: str) -> Iterator[bytes]:
    """message_start, content_block_start, ping, text deltas, block stop, message delta/stop."""
    start = anthropic_message("", model) | {"content": [], "stop_reason": None}
    yield _sse({"type": "message_start", "message": start}, "message_start")
    yield _sse({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}, "content_block_start")  # fmt: skip
    yield _sse({"type": "ping"}, "ping")
    for piece in pieces(text):
        delta = {"type": "text_delta", "text": piece}
        yield _sse({"type": "content_block_delta", "index": 0, "delta": delta},
                   "content_block_delta")  # fmt: skip
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    yield _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                "stop_sequence": None}, "usage": {"output_tokens": 1}},
               "message_delta")  # fmt: skip
    yield _sse({"type": "message_stop"}, "message_stop")


def gemini_answer(text: str, model: str, final: bool = True) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                 "index": 0}  # fmt: skip
    if final:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
        "modelVersion": model,
    }


def gemini_events(text: str, model: str) -> Iterator[bytes]:
    """streamGenerateContent with alt=sse: one GenerateContentResponse per piece."""
    texts = pieces(text)
    for i, piece in enumerate(texts):
        answer = gemini_answer(piece, model, final=i == len(texts) - 1)
        yield b"data: " + json.dumps(answer).encode() + b"\r\n\r\n"


def gemini_array(text: str, model: str) -> Iterator[bytes]:
    """streamGenerateContent without alt=sse: one JSON array whose elements arrive one by one."""
    texts = pieces(text)
    for i, piece in enumerate(texts):
        answer = json.dumps(gemini_answer(piece, model, final=i == len(texts) - 1)).encode()
        yield (b"[" if i == 0 else b",\r\n") + answer + (b"]" if i == len(texts) - 1 else b"")


def chatgpt_web_events(text: str) -> Iterator[bytes]:
    """ChatGPT web: a growing message snapshot per piece, the last one finished, then [DONE]."""
    so_far = ""
    texts = pieces(text)
    for i, piece in enumerate(texts):
        so_far += piece
        last = i == len(texts) - 1
        message = {
            "id": "m1", "author": {"role": "assistant", "name": None, "metadata": {}},
            "content": {"content_type": "text", "parts": [so_far]},
            "status": "finished_successfully" if last else "in_progress",
            "end_turn": True if last else None, "recipient": "all",
        }  # fmt: skip
        yield _sse({"message": message, "conversation_id": "c1", "error": None})
    yield b"data: [DONE]\n\n"


def claude_web_events(text: str, model: str) -> Iterator[bytes]:
    """Claude web (older completion form): one `completion` event per piece, then the stop."""
    for piece in [*pieces(text), ""]:
        stop = None if piece else "stop_sequence"
        yield _sse({"type": "completion", "completion": piece, "stop_reason": stop,
                    "model": model, "stop": None, "log_id": "l1"}, "completion")  # fmt: skip


def _gzip_stream() -> Callable[[bytes, int], bytes]:
    squeeze = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return lambda data, mode: squeeze.compress(data) + squeeze.flush(mode)
