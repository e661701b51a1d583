"""The local model client's HTTP/1.1 framing (dlpproxy/localmodel/http1.py), on bytes.

The transport's own tests (test_localmodel_transport.py) run it against loopback servers; these
feed it bytes split at every position, the odd-but-legal forms servers send and the malformed
ones that must fail.
"""

from __future__ import annotations

import pytest

from dlpproxy.localmodel import http1
from dlpproxy.localmodel.http1 import ProtocolError


def head_of(raw: bytes) -> http1.Head:
    buf = bytearray(raw)
    head = http1.take_head(buf)
    assert head is not None
    return head


def decode(body: http1.Body, wire: bytes, step: int) -> tuple[bytes, bytearray]:
    """Feed `wire` `step` bytes at a time, as reads would bring it; the body and what is left."""
    buf, out = bytearray(), []
    for i in range(0, len(wire), step):
        buf += wire[i : i + step]
        if not body.done:
            out.append(body.take(buf))
    return b"".join(out), buf


PAYLOAD = 'data: {"choices": ["hé"]}\n\n  '.encode()
CHUNKED = (
    b"6\r\n" + PAYLOAD[:6] + b"\r\n"
    + b"%x;name=value\r\n" % (len(PAYLOAD) - 6) + PAYLOAD[6:] + b"\r\n"
    + b"0\r\nx-trailer: one\r\n\r\n"
)  # fmt: skip


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 64, 4096])
def test_chunked_decodes_the_same_whatever_the_reads_cut(step: int) -> None:
    body = http1.Chunked()
    data, rest = decode(body, CHUNKED, step)
    assert data == PAYLOAD
    assert body.done and not rest


def test_chunked_accepts_bare_lf_line_ends_and_leaves_what_follows() -> None:
    body = http1.Chunked()
    data, rest = decode(body, b"3\nabc\n0\n\nHTTP/1.1", 4096)
    assert (data, body.done, bytes(rest)) == (b"abc", True, b"HTTP/1.1")


@pytest.mark.parametrize(
    ("wire", "problem"),
    [
        (b"zz\r\n", "bad chunk size line"),
        (b"\r\n", "bad chunk size line"),
        (b"11111111111111111\r\n", "bad chunk size line"),  # 17 hex digits
        (b"3\r\nabcdef\r\n", "longer than its size"),
        (b"3\r\nabcde", "longer than its size"),
        (b"1" * 5000, "size line longer"),
        (b"0\r\n" + b"x: " + b"y" * 70_000, "trailers longer"),
    ],
)
def test_malformed_chunked_bodies_are_refused(wire: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        http1.Chunked().take(bytearray(wire))


def test_a_chunked_body_cut_short_is_an_error_at_the_end_of_the_stream() -> None:
    body = http1.Chunked()
    assert body.take(bytearray(b"5\r\nab")) == b"ab"
    with pytest.raises(ProtocolError, match="before the body ended"):
        body.at_eof()


def test_a_sized_body_takes_its_length_and_no_more() -> None:
    body = http1.Sized(5)
    buf = bytearray(b"hel")
    assert body.take(buf) == b"hel" and not body.done
    buf += b"lo, extra"
    assert body.take(buf) == b"lo" and body.done
    assert bytes(buf) == b", extra"  # left for the transport: the connection is not reused


def test_a_body_until_close_ends_at_the_end_of_the_stream_and_is_not_reused() -> None:
    body = http1.UntilClose()
    assert body.take(bytearray(b"all of it")) == b"all of it"
    body.at_eof()
    assert body.done and not body.reusable


def test_head_parsing_keeps_names_as_sent_and_folds_continuations() -> None:
    buf = bytearray(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Long: one\r\n two\r\n"
        b"x-empty:\r\n\r\nbody"
    )
    head = http1.take_head(buf)
    assert head is not None
    assert (head.version, head.status, head.reason) == ((1, 1), 200, b"OK")
    assert head.headers == [
        (b"Content-Type", b"text/event-stream"), (b"X-Long", b"one two"), (b"x-empty", b""),
    ]  # fmt: skip
    assert bytes(buf) == b"body"


def test_an_incomplete_head_waits_and_a_huge_one_is_refused() -> None:
    assert http1.take_head(bytearray(b"HTTP/1.1 200 OK\r\ncontent-")) is None
    with pytest.raises(ProtocolError, match="head longer"):
        http1.take_head(bytearray(b"HTTP/1.1 200 OK\r\n" + b"x: y\r\n" * 20_000))


@pytest.mark.parametrize(
    "raw",
    [
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded-first: x\r\n\r\n",
    ],
)
def test_malformed_heads_are_refused(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        http1.take_head(bytearray(raw))


@pytest.mark.parametrize(
    ("raw", "method", "kind", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n", b"GET", http1.Sized, True),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"POST", http1.Chunked, True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", b"POST", http1.Chunked,
         True),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", b"POST", http1.UntilClose, False),
        # both framings: chunked wins and the connection is not trusted after it
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n", b"POST",
         http1.Chunked, False),
        (b"HTTP/1.1 200 OK\r\n\r\n", b"POST", http1.UntilClose, False),
        (b"HTTP/1.1 204 No Content\r\ncontent-length: 7\r\n\r\n", b"POST", http1.Empty, True),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", b"HEAD", http1.Empty, True),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: keep-alive, close\r\n\r\n",
         b"GET", http1.Sized, False),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\n", b"GET", http1.Sized, False),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\n", b"GET",
         http1.Sized, True),
    ],
)  # fmt: skip
def test_body_framing_follows_the_head(
    raw: bytes, method: bytes, kind: type[http1.Body], reusable: bool
) -> None:
    body = http1.body_of(head_of(raw), method)
    assert type(body) is kind
    assert body.reusable is reusable


@pytest.mark.parametrize(
    "lengths",
    [b"content-length: 3\r\ncontent-length: 4", b"content-length: -1", b"content-length: 0x10"],
)
def test_conflicting_or_bad_lengths_are_refused(lengths: bytes) -> None:
    head = head_of(b"HTTP/1.1 200 OK\r\n" + lengths + b"\r\n\r\n")
    with pytest.raises(ProtocolError, match="Content-Length"):
        http1.body_of(head, b"GET")


def test_a_request_goes_out_whole_with_its_length() -> None:
    wire = http1.request_bytes(
        b"POST", b"/v1/chat/completions?x=1",
        [(b"Host", b"127.0.0.1:8000"), (b"Transfer-Encoding", b"chunked"),
         (b"content-length", b"999")], b'{"a":1}',
    )  # fmt: skip
    assert wire == (
        b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b'Content-Length: 7\r\n\r\n{"a":1}'
    )
    assert b"Content-Length" not in http1.request_bytes(b"GET", b"/v1/models", [], b"")
    assert b"Content-Length: 0" in http1.request_bytes(b"POST", b"/x", [], b"")


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        (b"POST", b"/x", [(b"authorization", b"Bearer k\r\nx-injected: 1")]),
        (b"POST", b"/x", [(b"bad name", b"v")]),
        (b"POST", b"/x", [(b"x", b"nul\x00")]),
        (b"PO ST", b"/x", []),
        (b"POST", b"/x y", []),
        (b"POST", b"", []),
    ],
)
def test_header_or_request_line_injection_is_refused(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    with pytest.raises(ProtocolError):
        http1.request_bytes(method, target, headers, b"")
