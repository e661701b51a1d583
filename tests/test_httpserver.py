"""The small h11 server behind the gateway and the reroute relay, over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from dlpproxy.httpserver import HttpRequest, HttpResponse, HttpServer


def serve(
    handler: Callable[[HttpRequest], Awaitable[HttpResponse]],
    check: Callable[[str], Awaitable[None]],
    **options: Any,
) -> None:
    async def main() -> None:
        server = HttpServer(handler, **options)
        await server.start()
        try:
            await check(f"http://127.0.0.1:{server.port}")
        finally:
            await server.close()

    asyncio.run(main())


def test_answers_and_keeps_the_connection_alive() -> None:
    seen: list[tuple[str, str, bytes]] = []

    async def handler(req: HttpRequest) -> HttpResponse:
        seen.append((req.method, req.target, req.body))
        return HttpResponse(201, (("content-type", "text/plain"),), b"made " + req.body)

    async def check(url: str) -> None:
        async with httpx.AsyncClient() as client:
            one = await client.post(f"{url}/a?x=1", content=b"one")
            two = await client.post(f"{url}/b", content=b"two")
        assert (one.status_code, one.text, two.text) == (201, "made one", "made two")

    serve(handler, check)
    assert seen == [("POST", "/a?x=1", b"one"), ("POST", "/b", b"two")]


def test_a_streamed_body_reaches_the_client_piece_by_piece() -> None:
    client_saw_first = asyncio.Event()
    closed: list[bool] = []

    async def pieces() -> AsyncIterator[bytes]:
        try:
            yield b"first;"
            await asyncio.wait_for(client_saw_first.wait(), 10)  # only after the client read it
            yield b"second"
        finally:
            closed.append(True)

    async def handler(req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, (("content-type", "text/event-stream"),), pieces())

    async def check(url: str) -> None:
        async with httpx.AsyncClient() as client, client.stream("GET", url) as answer:
            got = []
            async for chunk in answer.aiter_raw():
                got.append(chunk)
                client_saw_first.set()
        assert b"".join(got) == b"first;second"
        assert got[0] == b"first;"

    serve(handler, check)
    assert closed == [True]


def test_a_client_leaving_mid_stream_closes_the_source() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * 1024
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    async def handler(req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, (), endless())

    async def check(url: str) -> None:
        async with httpx.AsyncClient() as client, client.stream("GET", url) as answer:
            async for _ in answer.aiter_raw():
                break
        await asyncio.wait_for(closed.wait(), 10)

    serve(handler, check)


def test_bodies_over_the_limit_get_413_and_bad_requests_400() -> None:
    async def handler(req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, (), b"ok")

    async def check(url: str) -> None:
        async with httpx.AsyncClient() as client:
            big = await client.post(url, content=b"x" * 2000)
            assert big.status_code == 413
            assert "over the 1000-byte limit" in big.json()["error"]["message"]
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        status = await reader.readline()
        writer.close()
        assert status.startswith(b"HTTP/1.1 400")

    serve(handler, check, max_body_bytes=1000)


def test_a_failing_handler_answers_500_and_the_server_keeps_serving() -> None:
    calls = []

    async def handler(req: HttpRequest) -> HttpResponse:
        calls.append(req.path)
        if req.path == "/boom":
            raise RuntimeError("bug")
        return HttpResponse(200, (), b"fine")

    async def check(url: str) -> None:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/boom")).status_code == 500
            assert (await client.get(f"{url}/ok")).text == "fine"

    serve(handler, check)
    assert calls == ["/boom", "/ok"]


def test_a_client_leaving_before_the_answer_cancels_the_handler() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(req: HttpRequest) -> HttpResponse:
        started.set()
        try:
            await asyncio.sleep(30)  # an upstream that takes its time
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return HttpResponse(200, (), b"too late")

    async def check(url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        await asyncio.wait_for(started.wait(), 10)
        writer.close()
        await asyncio.wait_for(cancelled.wait(), 10)

    serve(handler, check)


def test_pipelined_requests_are_both_answered() -> None:
    async def handler(req: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0.05)
        return HttpResponse(200, (), req.path.encode())

    async def check(url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"/two"):
            chunk = await asyncio.wait_for(reader.read(4096), 10)
            assert chunk, data
            data += chunk
        writer.close()
        assert data.index(b"/one") < data.index(b"/two")

    serve(handler, check)


def test_the_servers_own_refusals_can_take_the_callers_format() -> None:
    def refusal(target: str, status: int, message: str, kind: str) -> HttpResponse:
        body = f'{{"type": "error", "target": "{target}", "status": {status}}}'.encode()
        return HttpResponse(status, (("content-type", "application/json"),), body)

    async def handler(req: HttpRequest) -> HttpResponse:
        return HttpResponse(200, (), b"ok")

    async def check(url: str) -> None:
        async with httpx.AsyncClient() as client:
            big = await client.post(f"{url}/v1/messages", content=b"x" * 2000)
        assert big.status_code == 413
        assert big.json() == {"type": "error", "target": "/v1/messages", "status": 413}

    serve(handler, check, max_body_bytes=1000, refusal=refusal)
