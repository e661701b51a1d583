"""The local model client's own httpx transport (HTTP/1.1 on asyncio streams), against
real loopback servers: asyncio servers in the test that answer byte by byte as each test
scripts them, and the real llama.cpp server behind a counting TCP relay. No mocks."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from dlpproxy.localmodel import LocalModel, LocalModelConfig, LocalModelError
from dlpproxy.localmodel.transport import LocalModelTransport
from tests.e2e.conftest import self_signed
from tests.support.local_model import LocalModelServer, free_port

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Handler = Callable[["Server", Reader, Writer], Awaitable[None]]
QUESTION = {"messages": [{"role": "user", "content": "Is the quarterly report ready?"}],
            "temperature": 0}  # fmt: skip


def run[T](coro: Awaitable[T]) -> T:
    async def main() -> T:
        async with asyncio.timeout(20):  # a transport that hangs fails the test, not the run
            return await coro

    return asyncio.run(main())


@dataclass
class Server:
    """A loopback server: how many connections it accepted, saw closed, and held at once."""

    port: int = 0
    accepted: int = 0
    ended: int = 0  # connections whose client closed them
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)
    go_on: asyncio.Event = field(default_factory=asyncio.Event)  # a test lets the server go on

    def url(self, path: str = "/v1/x", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@contextlib.asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()

    async def connection(reader: Reader, writer: Writer) -> None:
        server.accepted += 1
        server.open_now += 1
        server.most_open = max(server.most_open, server.open_now)
        try:
            await handler(server, reader, writer)
            if await reader.read() == b"":  # the handler is done: wait for the client to close
                server.ended += 1
        except (ConnectionError, ssl.SSLError):
            server.ended += 1
        finally:
            server.open_now -= 1
            writer.close()

    listener = await asyncio.start_server(connection, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server


async def settled(condition: Callable[[], bool], within_s: float = 5.0) -> bool:
    """Whether the condition holds now or comes to within a few seconds (a loaded machine)."""
    async with asyncio.timeout(within_s):
        while not condition():
            await asyncio.sleep(0.01)
    return True


async def read_request(server: Server, reader: Reader) -> bytes | None:
    """One request (head and body) off a kept-alive connection; None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    request = head + await reader.readexactly(length)
    server.requests.append(request)
    return request


def answers(*bodies: bytes) -> Handler:
    """Answer each request on a connection with the next body (content-length), keeping it."""

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        for body in bodies:
            if await read_request(server, reader) is None:
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
            await writer.drain()

    return handler


def chunked_head(kind: bytes = b"text/event-stream") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ntransfer-encoding: chunked\r\n\r\n" % kind


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(text: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    doc = {"object": "chat.completion.chunk", "model": "tiny", "choices": [choice]}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def client(**transport_options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LocalModelTransport(**transport_options), trust_env=False)


def local_model(base_url: str) -> LocalModel:
    config = LocalModelConfig(name="company", base_url=base_url, model="tiny",
                              connect_timeout_s=2.0, first_token_timeout_s=5.0,
                              idle_timeout_s=5.0, timeout_s=5.0)  # fmt: skip
    return LocalModel(config)


async def stream_of(local: LocalModel) -> list[dict[str, Any]]:
    try:
        return [c async for c in local.chat_stream(QUESTION)]
    finally:
        await local.aclose()


# -- keep-alive and bodies


def test_successive_requests_share_one_kept_alive_connection() -> None:
    async def scenario() -> tuple[list[bytes], Server]:
        async with serving(answers(b'{"n": 1}', b'{"n": 2}', b'{"n": 3}')) as server:
            async with client() as http:
                bodies = [(await http.post(server.url(), json={"i": i})).content for i in range(3)]
            await settled(lambda: server.ended == 1)
            return bodies, server

    bodies, server = run(scenario())
    assert bodies == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    assert (server.accepted, server.ended) == (1, 1)  # closing the client closed it
    sent = [r.split(b"\r\n\r\n", 1)[1] for r in server.requests]
    assert sent == [b'{"i":0}', b'{"i":1}', b'{"i":2}']


def test_a_chunked_body_is_joined_and_its_connection_reused() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        for parts in ([b"hello ", b"chunked ", b"world"], [b"again"]):
            await read_request(server, reader)
            writer.write(chunked_head(b"text/plain") + b"".join(map(chunk, parts)) + b"0\r\n\r\n")

    async def scenario() -> tuple[list[bytes], int]:
        async with serving(handler) as server, client() as http:
            bodies = [(await http.get(server.url())).content for _ in range(2)]
            return bodies, server.accepted

    assert run(scenario()) == ([b"hello chunked world", b"again"], 1)


def test_an_interim_100_continue_is_skipped_and_the_answer_read() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal")  # fmt: skip

    async def scenario() -> tuple[int, bytes]:
        async with serving(handler) as server, client() as http:
            response = await http.post(server.url(), json={})
            return response.status_code, response.content

    assert run(scenario()) == (200, b"final")


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok and bytes after the body",
    ],
)
def test_a_connection_that_may_not_go_on_is_not_reused(answer: bytes) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        if await read_request(server, reader) is not None:
            writer.write(answer)
            await writer.drain()

    async def scenario() -> tuple[list[bytes], int]:
        async with serving(handler) as server, client() as http:
            bodies = [(await http.post(server.url(), json={})).content for _ in range(2)]
            return bodies, server.accepted

    assert run(scenario()) == ([b"ok", b"ok"], 2)


def test_a_malformed_answer_is_a_remote_protocol_error_and_a_bad_response() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.write(chunked_head() + chunk(event("one")) + b"zz\r\nnot a size\r\n")

    async def scenario() -> LocalModelError:
        async with serving(handler) as server:
            with pytest.raises(LocalModelError) as caught:
                await stream_of(local_model(server.url("/v1")))
            return caught.value

    error = run(scenario())
    assert error.kind == "bad_response"
    assert "bad chunk size line" in error.detail


def test_a_body_without_length_ends_when_the_server_closes() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        writer.close()

    async def scenario() -> bytes:
        async with serving(handler) as server, client() as http:
            return (await http.get(server.url())).content

    assert run(scenario()) == b"until the end"


def test_a_gzip_body_is_decoded_by_httpx_not_by_the_transport() -> None:
    packed = gzip.compress(b'{"zipped": true}')

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        while await read_request(server, reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(packed), packed))  # fmt: skip

    async def scenario() -> tuple[bytes, Any]:
        async with serving(handler) as server, client() as http:
            async with http.stream("GET", server.url()) as response:
                raw = b"".join([part async for part in response.aiter_raw()])
            return raw, (await http.get(server.url())).json()

    assert run(scenario()) == (packed, {"zipped": True})


def test_a_stream_flows_chunk_by_chunk_as_the_server_writes() -> None:
    """The server writes one event and waits until the client has it: a transport that
    buffered would never hand the first event over, and the test would time out."""

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.write(chunked_head() + chunk(event("one")))
        await server.go_on.wait()
        writer.write(chunk(event(" two", "stop")) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    async def scenario() -> list[bytes]:
        async with serving(handler) as server, client() as http:
            async with http.stream("POST", server.url(), json={}) as response:
                parts = []
                async for part in response.aiter_raw():
                    parts.append(part)
                    server.go_on.set()
            return parts

    parts = run(scenario())
    assert parts[0] == event("one")
    assert b"".join(parts) == event("one") + event(" two", "stop") + b"data: [DONE]\n\n"


def test_the_local_model_client_streams_through_the_transport_by_default() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        for _ in range(2):
            await read_request(server, reader)
            writer.write(chunked_head() + chunk(event("a")) + chunk(event("b", "stop"))
                         + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")  # fmt: skip

    async def scenario() -> tuple[list[str], int]:
        async with serving(handler) as server:
            local = local_model(server.url("/v1"))
            try:
                texts = []
                for _ in range(2):
                    async for c in local.chat_stream(QUESTION):
                        texts.append(c["choices"][0]["delta"]["content"])
            finally:
                await local.aclose()
            return texts, server.accepted

    assert run(scenario()) == (["a", "b", "a", "b"], 1)


def test_a_streamed_chat_request_goes_out_as_the_server_expects() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.write(chunked_head() + chunk(event("a", "stop")) + b"0\r\n\r\n")

    async def scenario() -> bytes:
        async with serving(handler) as server:
            config = LocalModelConfig(name="company", base_url=server.url("/v1"), model="tiny",
                                      api_key="sk-local")  # fmt: skip
            local = LocalModel(config)
            try:
                [c async for c in local.chat_stream(QUESTION)]
            finally:
                await local.aclose()
            return server.requests[0]

    head, body = run(scenario()).split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert headers[b"accept"] == b"text/event-stream"
    assert headers[b"authorization"] == b"Bearer sk-local"
    assert headers[b"user-agent"].startswith(b"dlpproxy/")
    assert headers[b"content-type"] == b"application/json"
    assert int(headers[b"content-length"]) == len(body)
    assert b"accept-encoding" not in headers  # the stream comes as it is, not compressed
    assert json.loads(body) == {**QUESTION, "model": "tiny", "stream": True}


# -- failures, as httpx errors and through LocalModel


def cut_mid_body(server_kind: str) -> Handler:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        if server_kind == "chunked":
            writer.write(chunked_head() + chunk(event("one")))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"content-length: 4000\r\n\r\n" + event("one"))  # fmt: skip
        await writer.drain()
        writer.close()

    return handler


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_server_closing_mid_body_is_a_remote_protocol_error(framing: str) -> None:
    async def scenario() -> list[bytes]:
        parts: list[bytes] = []
        async with serving(cut_mid_body(framing)) as server, client() as http:
            with pytest.raises(httpx.RemoteProtocolError):
                async with http.stream("POST", server.url(), json={}) as response:
                    async for part in response.aiter_raw():
                        parts.append(part)
        return parts

    assert run(scenario()) == [event("one")]


def test_a_stream_cut_mid_body_is_a_bad_response_from_the_local_model() -> None:
    async def scenario() -> LocalModelError:
        async with serving(cut_mid_body("chunked")) as server:
            with pytest.raises(LocalModelError) as caught:
                await stream_of(local_model(server.url("/v1")))
            return caught.value

    error = run(scenario())
    assert error.kind == "bad_response"
    assert "broke the answer off" in error.detail


def test_nothing_listening_is_a_connect_error_and_unavailable() -> None:
    port = free_port()

    async def scenario() -> LocalModelError:
        async with client() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{port}/v1/models")
        with pytest.raises(LocalModelError) as caught:
            await stream_of(local_model(f"http://127.0.0.1:{port}/v1"))
        return caught.value

    assert run(scenario()).kind == "unavailable"


def held(start: bytes) -> Handler:
    """Take one request, write `start` of an answer, then hold until the test says go on."""

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.write(start)
        await server.go_on.wait()

    return handler


def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def scenario() -> None:
        async with serving(held(b"")) as server, client() as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(server.url(), timeout=httpx.Timeout(None, read=0.2))
            server.go_on.set()

    run(scenario())


def test_a_response_closed_early_closes_its_connection_and_pools_nothing() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        while await read_request(server, reader) is not None:
            writer.write(chunked_head() + chunk(event("one")))  # and never the end

    async def scenario() -> Server:
        async with serving(handler) as server, client() as http:
            for _ in range(2):
                async with http.stream("POST", server.url(), json={}) as response:
                    async for _part in response.aiter_raw():
                        break  # the caller leaves mid-stream
            await settled(lambda: server.ended == 2)
            return server

    server = run(scenario())
    assert (server.accepted, server.ended) == (2, 2)


def test_aclose_closes_the_pooled_connections() -> None:
    async def scenario() -> tuple[int, int]:
        async with serving(answers(b"{}")) as server:
            http = client()
            await http.get(server.url())
            await asyncio.sleep(0.05)
            before = server.ended
            await http.aclose()
            await settled(lambda: server.ended == 1)
            return before, server.ended

    assert run(scenario()) == (0, 1)


def test_at_most_max_connections_are_open_and_the_rest_wait_their_turn() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        while await read_request(server, reader) is not None:
            await asyncio.sleep(0.05)  # every answer takes a while: requests pile up
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async def scenario() -> tuple[list[bytes], Server]:
        async with serving(handler) as server, client(max_connections=2) as http:
            responses = await asyncio.gather(*(http.get(server.url()) for _ in range(6)))
            return [r.content for r in responses], server

    bodies, server = run(scenario())
    assert bodies == [b"ok"] * 6
    assert (server.accepted, server.most_open) == (2, 2)


def test_waiting_longer_than_the_pool_timeout_is_a_pool_timeout() -> None:
    async def scenario() -> None:
        start = chunked_head() + chunk(event("one"))
        async with serving(held(start)) as server, client(max_connections=1) as http:
            async with http.stream("POST", server.url(), json={}):
                with pytest.raises(httpx.PoolTimeout):
                    await http.get(server.url(), timeout=httpx.Timeout(None, pool=0.1))
            server.go_on.set()

    run(scenario())


def test_a_kept_alive_connection_the_server_dropped_is_replaced() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # as a server does when a kept-alive connection idles too long

    async def scenario() -> tuple[list[bytes], int]:
        async with serving(handler) as server, client() as http:
            first = (await http.get(server.url())).content
            await asyncio.sleep(0.05)
            second = (await http.get(server.url())).content
            return [first, second], server.accepted

    assert run(scenario()) == ([b"ok", b"ok"], 2)


def test_a_request_lost_by_a_kept_alive_connection_before_any_answer_is_sent_again() -> None:
    """The server closes an idle connection just as the next request goes out on it."""

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst")
        if server.accepted == 1:
            await read_request(server, reader)
            writer.close()  # took the request, answered nothing

    async def scenario() -> tuple[list[bytes], int, int]:
        async with serving(handler) as server, client() as http:
            bodies = [(await http.get(server.url())).content for _ in range(2)]
            return bodies, server.accepted, len(server.requests)

    assert run(scenario()) == ([b"first", b"first"], 2, 3)


def test_a_fresh_connection_that_answers_nothing_is_not_tried_again() -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await read_request(server, reader)
        writer.close()

    async def scenario() -> int:
        async with serving(handler) as server, client() as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(server.url())
            return server.accepted

    assert run(scenario()) == 1


# -- https and the real model


def test_https_goes_through_tls_and_checks_the_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, ["127.0.0.1"])
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def scenario() -> tuple[bytes, int]:
        async with serving(answers(b'{"tls": 1}', b'{"tls": 2}'), server_tls) as server:
            async with client() as http:  # the default context does not know the certificate
                with pytest.raises(httpx.ConnectError):
                    await http.get(server.url(scheme="https"))
            async with client(ssl_context=trusting) as http:
                await http.get(server.url(scheme="https"))
                body = (await http.get(server.url(scheme="https"))).content
            return body, server.accepted

    # asyncio counts a connection once its handshake is done: the two requests shared one
    assert run(scenario()) == (b'{"tls": 2}', 1)


async def relay_to(port: int) -> tuple[asyncio.Server, Server]:
    """A TCP relay to 127.0.0.1:port that counts the connections it carries."""
    counts = Server()

    async def pipe(reader: Reader, writer: Writer) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def carry(reader: Reader, writer: Writer) -> None:
        counts.accepted += 1
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    relay = await asyncio.start_server(carry, "127.0.0.1", 0)
    counts.port = relay.sockets[0].getsockname()[1]
    return relay, counts


def test_the_real_model_streams_several_answers_over_one_connection(
    local_model_server: LocalModelServer,
) -> None:
    async def scenario() -> tuple[list[str], str, int]:
        relay, counts = await relay_to(local_model_server.port)
        async with relay:
            local = local_model(counts.url("/v1"))
            try:
                texts = []
                for _ in range(3):
                    parts = [c["choices"][0]["delta"].get("content") or ""
                             async for c in local.chat_stream(QUESTION)]  # fmt: skip
                    texts.append("".join(parts))
                whole = await local.chat(QUESTION)
            finally:
                await local.aclose()
            return texts, whole["choices"][0]["message"]["content"], counts.accepted

    texts, whole, connections = run(scenario())
    assert texts == [whole] * 3 and whole
    assert connections == 1
