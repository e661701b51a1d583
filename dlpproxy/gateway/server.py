"""Building the gateway from its files and serving it on a socket."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from dlpproxy.audit import AuditWriter, audit_salt
from dlpproxy.engine import Engine
from dlpproxy.errors import DlpError
from dlpproxy.gateway.app import Gateway
from dlpproxy.gateway.config import GatewayConfigHolder
from dlpproxy.gateway.formats import error, style_of
from dlpproxy.heap import freeze_startup_heap
from dlpproxy.httpserver import HttpResponse, HttpServer
from dlpproxy.policy import PolicyHolder
from dlpproxy.proxy.inspector import Inspector
from dlpproxy.settings import Settings

# Bodies up to this size are read so that an oversized one gets a refusal in the caller's format
# (the policy's max_body_bytes decides); larger ones are cut off by the HTTP server itself.
READ_LIMIT = 32 * 1024 * 1024


def build_gateway(
    config: Path, policy: Path, audit_db: Path | None, detectors: str = "",
    settings: Settings | None = None,
) -> Gateway:  # fmt: skip
    """The gateway for these files; DlpError names the file and problem when one is wrong."""
    settings = settings or Settings()
    if detectors:
        settings = settings.with_detectors(tuple(d.strip() for d in detectors.split(",")))
    gateway_config = GatewayConfigHolder(config)
    holder = PolicyHolder(policy)
    writer = AuditWriter(audit_db) if audit_db is not None else None
    salt = audit_salt(audit_db) if audit_db is not None else b""
    return Gateway(gateway_config, holder, Inspector(Engine(settings), salt), writer)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) from PEM files; DlpError naming the file and
    the problem when they cannot be used."""
    for what, path in (("certificate", cert), ("key", key)):
        if not path.is_file():
            raise DlpError(f"TLS {what} {path}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise DlpError(f"TLS certificate {cert} with key {key}: {exc}") from None
    return context


async def serve(
    gateway: Gateway, host: str, port: int, ready: Callable[[HttpServer], None] | None = None,
    stop: asyncio.Event | None = None, tls: ssl.SSLContext | None = None,
) -> None:  # fmt: skip
    """Serve until `stop` is set (or SIGINT/SIGTERM when run from the command line); HTTPS
    with `tls` (see `tls_context`)."""
    limit = max(READ_LIMIT, gateway.policy.current().max_body_bytes + 1024 * 1024)
    server = HttpServer(gateway.handle, host, port, max_body_bytes=limit, refusal=_refusal, tls=tls)
    await server.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    freeze_startup_heap()  # full collections then skip the start-up objects (dlpproxy.heap)
    if ready is not None:
        ready(server)
    try:
        await stop.wait()
    finally:
        await server.close()
        await gateway.aclose()
        gateway.inspector.engine.close()


def _refusal(target: str, status: int, message: str, kind: str) -> HttpResponse:
    """The HTTP server's own refusals (a body over its limit, a broken request) in the format
    of the endpoint they were sent to."""
    return error(style_of(urlsplit(target).path), status, message, kind)
