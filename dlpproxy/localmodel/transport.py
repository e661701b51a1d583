"""The httpx transport of the local model client: HTTP/1.1 on asyncio streams.

httpx's default transport (httpcore on anyio) spent about 3.5 ms of CPU per short streamed answer
from a local model, several times what the gateway spends on the prompt itself; this one does the
same HTTP/1.1 work with one asyncio stream per connection and the framing of `http1.py`. It keeps
httpx's API: the client, its errors (ConnectError, ReadTimeout, RemoteProtocolError, ...) and its
content decoding stay httpx's. https goes through asyncio's TLS with httpx's default context
(certifi's CA bundle, as the default transport with `trust_env=False`) unless one is given.

Connections are kept alive in a pool per (scheme, host, port), at most `max_connections` open
per origin. A connection goes back to the pool only after its response was read to the end and
it may go on (HTTP/1.1 without `Connection: close`, a body framed by length or chunks, nothing
sent after it); a response closed early closes its connection. A request that a
kept-alive connection loses before a byte of answer came (the server closed it, idle, as the
request went out) is sent once more on a new connection; chat requests change nothing on the
server, so a repeat costs only compute.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from dlpproxy.localmodel import http1

Origin = tuple[str, str, int]
READ_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


class LocalModelTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive, for `httpx.AsyncClient(transport=...)`; one event loop only."""

    def __init__(self, max_connections: int = 32, ssl_context: ssl.SSLContext | None = None):
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        self._pools: dict[Origin, _Pool] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or _DEFAULT_PORTS.get(url.scheme)
        if port is None or not url.host:
            raise httpx.UnsupportedProtocol(f"cannot send to {url}", request=request)
        origin = (url.scheme, url.host, port)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(origin, self._max_connections, self._tls)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        for attempt in (1, 2):
            conn = await pool.acquire(request, timeouts)
            try:
                head = await conn.exchange(request, body, timeouts)
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
                pool.release(conn, reuse=False)
                # a kept-alive connection the server closed while idle: once more on a new one
                if attempt == 1 and conn.served and not conn.answered:
                    continue
                raise
            except BaseException:
                pool.release(conn, reuse=False)
                raise
            stream = _ResponseStream(pool, conn, request, timeouts.get("read"))
            return httpx.Response(head.status, headers=head.headers, stream=stream,
                                  extensions={"http_version": b"HTTP/1.1",
                                              "reason_phrase": head.reason})  # fmt: skip
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(trust_env=False)
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context


class _Connection:
    """One TCP (or TLS) connection, its receive buffer and the framing of the current answer."""

    __slots__ = ("answered", "body", "buf", "reader", "served", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = bytearray()  # received, not parsed yet
        self.body: http1.Body = http1.Empty()  # how the current answer's body ends
        self.served = False  # it carried a whole exchange before this one
        self.answered = False  # the server sent a byte of the current answer

    def alive(self) -> bool:
        """An idle connection the server has not closed (nor failed) meanwhile."""
        return not (self.writer.is_closing() or self.reader.at_eof() or self.reader.exception())

    def reusable(self) -> bool:
        """The answer was read to its end, nothing came after it, and both sides may go on."""
        return self.body.done and self.body.reusable and not self.buf and self.alive()

    async def exchange(
        self, request: httpx.Request, body: bytes, timeouts: dict[str, float | None]
    ) -> http1.Head:
        """Send the request, head and body in one write, then read up to the response head
        (interim 1xx answers skipped); `self.body` then frames what follows."""
        self.answered = False
        try:
            data = http1.request_bytes(
                request.method.encode("ascii"), request.url.raw_path, request.headers.raw, body
            )
        except http1.ProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        with _mapped(request, "write", timeouts.get("write")):
            self.writer.write(data)
            await self.writer.drain()
        read_timeout = timeouts.get("read")
        while True:
            try:
                head = http1.take_head(self.buf)
                if head is not None and head.status >= 200:
                    self.body = http1.body_of(head, request.method.encode("ascii"))
                    return head
            except http1.ProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=request) from None
            if head is not None and head.status == 101:
                raise httpx.RemoteProtocolError("the server switched protocols", request=request)
            if head is None and not await self.receive(request, read_timeout):
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without sending a response", request=request
                )

    async def receive(self, request: httpx.Request, timeout: float | None) -> bool:
        """Read what the server sent next into the buffer; False at the end of the stream."""
        if timeout is None:
            try:
                data = await self.reader.read(READ_SIZE)
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from None
        else:
            with _mapped(request, "read", timeout):
                async with asyncio.timeout(timeout):
                    data = await self.reader.read(READ_SIZE)
        if not data:
            return False
        self.answered = True
        self.buf += data
        return True

    def close(self) -> None:
        self.writer.close()


class _ResponseStream(httpx.AsyncByteStream):
    """The body as it arrives (what one read brought, joined); the connection returns to the
    pool once the body has ended."""

    def __init__(
        self, pool: _Pool, conn: _Connection, request: httpx.Request, read_timeout: float | None
    ) -> None:
        self._pool, self._conn, self._request = pool, conn, request
        self._read_timeout = read_timeout
        self._complete = False
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, request = self._conn, self._request
        body, buf = conn.body, conn.buf
        while not self._closed:
            if body.done:
                self._complete = True
                return
            if buf:
                try:
                    data = body.take(buf)
                except http1.ProtocolError as exc:
                    raise httpx.RemoteProtocolError(str(exc), request=request) from None
                if data:
                    yield data
                    continue
                if body.done:
                    continue
            # the buffer is empty or holds only part of a line: read on
            if not await conn.receive(request, self._read_timeout):
                try:
                    body.at_eof()
                except http1.ProtocolError:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection", request=request
                    ) from None

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.release(self._conn, reuse=self._complete)


class _Pool:
    """The connections to one origin: idle ones kept for reuse, at most `limit` open."""

    def __init__(self, origin: Origin, limit: int, tls: Any) -> None:
        self.origin, self.limit, self._tls = origin, limit, tls
        self.idle: list[_Connection] = []
        self.open: set[_Connection] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.connecting = 0  # connections being opened, counted against the limit
        self.closed = False

    async def acquire(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> _Connection:
        while True:
            while self.idle:
                conn = self.idle.pop()  # the most recently used: the likeliest to be alive
                if conn.alive():
                    return conn
                self._drop(conn)
            if len(self.open) + self.connecting < self.limit:
                return await self._connect(request, timeouts.get("connect"))
            await self._wait(request, timeouts.get("pool"))

    def release(self, conn: _Connection, reuse: bool) -> None:
        """Keep a connection whose exchange ended cleanly and may go on; close any other."""
        if reuse and not self.closed and conn.reusable():
            conn.served = True
            self.idle.append(conn)
            self._wake()
        else:
            self._drop(conn)

    def close(self) -> None:
        """Close every connection, idle or in use (a stream still reading fails)."""
        self.closed = True
        for conn in list(self.open):
            self._drop(conn)
        self.idle.clear()

    async def _connect(self, request: httpx.Request, timeout: float | None) -> _Connection:
        scheme, host, port = self.origin
        tls = self._tls() if scheme == "https" else None
        self.connecting += 1
        try:
            with _mapped(request, "connect", timeout):
                async with asyncio.timeout(timeout):
                    reader, writer = await asyncio.open_connection(
                        host, port, ssl=tls, server_hostname=host if tls else None,
                        limit=READ_SIZE,
                    )  # fmt: skip
        except BaseException:
            self._wake()  # the slot is free again
            raise
        finally:
            self.connecting -= 1
        conn = _Connection(reader, writer)
        if self.closed:  # the transport was closed meanwhile
            conn.close()
            raise httpx.ConnectError("the transport is closed", request=request)
        self.open.add(conn)
        return conn

    async def _wait(self, request: httpx.Request, timeout: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            with _mapped(request, "pool", timeout):
                async with asyncio.timeout(timeout):
                    await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken but leaving: pass the turn on
            raise
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def _drop(self, conn: _Connection) -> None:
        if conn in self.open:
            self.open.discard(conn)
            conn.close()
            self._wake()
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


_TIMEOUTS: dict[str, type[httpx.TimeoutException]] = {
    "connect": httpx.ConnectTimeout, "read": httpx.ReadTimeout,
    "write": httpx.WriteTimeout, "pool": httpx.PoolTimeout,
}  # fmt: skip
_ERRORS: dict[str, type[httpx.TransportError]] = {
    "connect": httpx.ConnectError, "read": httpx.ReadError, "write": httpx.WriteError,
}  # fmt: skip


@contextlib.contextmanager
def _mapped(request: httpx.Request, phase: str, timeout: float | None) -> Iterator[None]:
    """A timeout or socket error of one phase as the httpx exception for it."""
    try:
        yield
    except TimeoutError:
        raise _TIMEOUTS[phase](f"{phase} timed out after {timeout:g} s", request=request) from None
    except OSError as exc:  # ssl.SSLError included
        error = _ERRORS.get(phase, httpx.ReadError)
        raise error(str(exc) or type(exc).__name__, request=request) from None
