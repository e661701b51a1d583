"""The reroute relay: a loopback HTTP server inside the proxy process that answers rerouted flows.

mitmproxy streams a response only when it comes from a server, so a rerouted flow is pointed at
this relay (`/dlpproxy/reroute/<token>`, the token unguessable and good for one request) and the
relay writes the local model's answer in the caller's format, token by token when streamed.
The local model clients live here too, rebuilt when the policy's `local_models` change.
"""

from __future__ import annotations

import asyncio
import secrets

from dlpproxy.enforce.reroute import Reroute, answer_locally
from dlpproxy.httpserver import HttpRequest, HttpResponse, HttpServer, json_error
from dlpproxy.localmodel.client import LocalModelPool, LocalModels
from dlpproxy.policy import Policy

PREFIX = "/dlpproxy/reroute/"
JOB_TTL_S = 60.0  # a job mitmproxy never fetched (the client left) is dropped after this


class Relay:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.server: HttpServer | None = None
        self.jobs: dict[str, Reroute] = {}
        self.pool = LocalModelPool()
        self.ttl_s = JOB_TTL_S
        self._lock = asyncio.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.server.port if self.server else 0)

    @property
    def models(self) -> LocalModels:
        return self.pool.models

    def models_for(self, policy: Policy) -> LocalModels:
        """The clients for the policy's local models (kept while the configuration is equal)."""
        return self.pool.current(policy.local_models)

    async def register(self, job: Reroute) -> str:
        """Keep the job for one fetch; the path that fetches it."""
        async with self._lock:
            if self.server is None:
                server = HttpServer(self._handle, self.host, 0, max_body_bytes=1024)
                await server.start()
                self.server = server
        token = secrets.token_urlsafe(18)
        self.jobs[token] = job
        asyncio.get_running_loop().call_later(self.ttl_s, self._expire, token)
        return PREFIX + token

    async def _handle(self, req: HttpRequest) -> HttpResponse:
        token = req.path[len(PREFIX) :] if req.path.startswith(PREFIX) else ""
        job = self.jobs.pop(token, None)
        if job is None:
            return json_error(404, "no such rerouted request (it ran once, or expired)")
        return await answer_locally(job)

    def _expire(self, token: str) -> None:
        """A job nobody fetched in time (the client left first): dropped, and its audit event
        written with what happened."""
        job = self.jobs.pop(token, None)
        if job is not None:
            job.finish(False, "the client left before the local model was asked")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None
        await self.pool.aclose()
