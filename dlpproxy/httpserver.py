"""A small asyncio HTTP/1.1 server on h11, for the gateway and the proxy's reroute relay.

A handler takes an `HttpRequest` and returns an `HttpResponse` whose body is bytes or an async
iterator of bytes; an iterator is sent chunk by chunk as it comes (chunked transfer encoding),
so a streamed answer reaches the client token by token. Keep-alive, request size limits and
protocol errors are handled here; a client that goes away mid-stream closes the iterator, which
stops the work behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import h11

log = logging.getLogger("dlpproxy.http")

MAX_HEADER_BYTES = 64 * 1024
READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    client: str = ""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | AsyncIterator[bytes] = b""


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
# (request target or "", status, message, kind) -> the refusal the server itself sends
Refusal = Callable[[str, int, str, str], HttpResponse]


def json_error(status: int, message: str, kind: str = "invalid_request_error") -> HttpResponse:
    """An OpenAI-style error body; callers with another format build their own."""
    doc = {"error": {"message": message, "type": kind, "code": None}}
    return HttpResponse(status, (("content-type", "application/json"),), json.dumps(doc).encode())


class HttpServer:
    """Serve `handler` on host:port (port 0 picks a free one; `port` tells which after start)."""

    def __init__(
        self, handler: Handler, host: str = "127.0.0.1", port: int = 0,
        max_body_bytes: int = 10 * 1024 * 1024, idle_timeout_s: float = 60.0,
        refusal: Refusal | None = None, tls: ssl.SSLContext | None = None,
    ) -> None:  # fmt: skip
        self.handler = handler
        self.tls = tls  # HTTPS when given (a server-side context with its certificate loaded)
        self.refusal: Refusal = refusal or (lambda _target, status, msg, kind: json_error(
            status, msg, kind))  # fmt: skip
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.idle_timeout_s = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening and end open connections (idle keep-alive ones would hold it up)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        try:
            while True:
                request = await self._read_request(conn, reader, client)
                if request is None:
                    break
                if isinstance(request, HttpResponse):
                    await self._send(conn, writer, request, "GET")
                    break
                response = await self._answer(request, conn, reader)
                if response is None:  # the client went away: its request's work is cancelled
                    break
                await self._send(conn, writer, response, request.method)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(
        self, request: HttpRequest, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> HttpResponse | None:
        """The handler's response; None (handler cancelled) when the client closes meanwhile.

        While the handler works, the connection is watched: an end of stream means the client
        gave up, so the work for it (an upstream call, a local model) stops now instead of
        running on for nobody. Bytes that arrive instead (a pipelined request) are kept.
        """
        work = asyncio.ensure_future(self.handler(request))
        watch = asyncio.ensure_future(reader.read(READ_SIZE))
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
            if watch.done():
                gone = watch.exception() is not None or not watch.result()
                if gone and not work.done():
                    work.cancel()
                    with contextlib.suppress(BaseException):
                        await work
                    return None
                if not gone:
                    conn.receive_data(watch.result())
            return await work
        except Exception:  # a handler bug answers 500; the server keeps running
            log.exception("handler failed for %s %s", request.method, request.path)
            return json_error(500, "internal error in dlpproxy", "server_error")
        finally:
            if not watch.done():
                watch.cancel()
                with contextlib.suppress(BaseException):
                    await watch

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, client: str
    ) -> HttpRequest | HttpResponse | None:
        """The next request; None when the client closed; a response for a bad request."""
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                target = head.target.decode("latin-1") if head is not None else ""
                return self.refusal(
                    target, exc.error_status_hint, f"bad HTTP request: {exc}",
                    "invalid_request_error",
                )  # fmt: skip
            if event is h11.NEED_DATA:
                try:
                    data = await asyncio.wait_for(reader.read(READ_SIZE), self.idle_timeout_s)
                except TimeoutError:
                    return None
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(event, h11.Request):
                head = event
                length = _content_length(event.headers)
                if length is not None and length > self.max_body_bytes:
                    return self.refusal(
                        event.target.decode("latin-1"), 413, f"request body of {length} bytes "
                        f"is over the {self.max_body_bytes}-byte limit", "request_too_large",
                    )  # fmt: skip
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body_bytes:
                    assert head is not None
                    return self.refusal(
                        head.target.decode("latin-1"), 413,
                        f"request body is over the {self.max_body_bytes}-byte limit",
                        "request_too_large",
                    )  # fmt: skip
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                headers = tuple(
                    (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers
                )
                return HttpRequest(
                    head.method.decode("ascii"), head.target.decode("latin-1"), headers,
                    bytes(body), client,
                )  # fmt: skip
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _send(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, response: HttpResponse,
        method: str,
    ) -> None:  # fmt: skip
        headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
        streamed = not isinstance(response.body, bytes | bytearray)
        if not streamed:
            assert isinstance(response.body, bytes | bytearray)
            headers.append(("content-length", str(len(response.body))))
        if conn.their_state is not h11.DONE:  # the request was refused unread: close after
            headers.append(("connection", "close"))
        head = conn.send(h11.Response(status_code=response.status, headers=headers)) or b""
        if not streamed:  # one write, one send: head, body and end together
            parts = [head]
            if method != "HEAD" and response.body:
                parts.append(conn.send(h11.Data(data=bytes(response.body))) or b"")  # type: ignore[arg-type]
            parts.append(conn.send(h11.EndOfMessage()) or b"")
            writer.write(b"".join(parts))
            await writer.drain()
            return
        chunks = response.body
        assert not isinstance(chunks, bytes | bytearray)
        try:
            writer.write(head)  # a stream's head at once: the client learns the status now
            await writer.drain()
            async for chunk in chunks:
                if chunk:
                    writer.write(conn.send(h11.Data(data=chunk)))
                    await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        finally:
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
