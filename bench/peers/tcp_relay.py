"""A bare TCP byte relay, the floor of bench/gateway.py: what one more process in the path costs.

    python bench/peers/tcp_relay.py --target 127.0.0.1:8000 [--listen 127.0.0.1:0]

Each client connection gets its own connection to the target; bytes go both ways as they come,
with no parsing and no buffering beyond what the sockets hold (asyncio protocols: a received
chunk is written to the other side in the same callback). TCP_NODELAY on both sockets. A half
close is passed on. Prints `listening HOST:PORT` once the socket is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections.abc import Sequence


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Side(asyncio.Protocol):
    """One socket of a relayed pair: what it receives, its peer writes; when the peer's send
    buffer is full, this side stops reading."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Side | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _nodelay(transport)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        peer = self.peer.transport if self.peer else None
        if peer is not None and peer.can_write_eof() and not peer.is_closing():
            peer.write_eof()
            return True  # the other direction may still be talking
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class ClientSide(Side):
    """The accepted client's socket: reading waits until the target's connection is open."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__()
        self.target = target

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        assert self.transport is not None
        upstream = Side()
        upstream.peer = self
        try:
            await asyncio.get_running_loop().create_connection(lambda: upstream, *self.target)
        except OSError:
            self.transport.close()
            return
        self.peer = upstream
        if self.transport.is_closing():
            assert upstream.transport is not None
            upstream.transport.close()
        else:
            self.transport.resume_reading()


async def serve(listen: tuple[str, int], target: tuple[str, int]) -> asyncio.Server:
    """A listening relay to `target`; the caller keeps it running."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: ClientSide(target), *listen)


def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


async def _main(listen: tuple[str, int], target: tuple[str, int]) -> None:
    server = await serve(listen, target)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=host_port, required=True, help="HOST:PORT to relay to")
    parser.add_argument("--listen", type=host_port, default=("127.0.0.1", 0), help="HOST:PORT")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.listen, args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
