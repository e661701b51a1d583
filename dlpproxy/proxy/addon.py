"""The mitmproxy addon: decrypt only AI traffic, inspect each prompt, enforce, record.

Hooks: `tls_clienthello` lets every non-AI connection pass as an opaque tunnel; `request` turns a
flow into a plain `Request`, runs the `Inspector` and applies its verdict; `responseheaders` and
`response` restore placeholders in redacted conversations (SSE streams too). Nothing raises into
mitmproxy: every failure is a decision and an audit event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http, tls
from mitmproxy.proxy import server_hooks

from dlpproxy.audit import AuditWriter, audit_salt
from dlpproxy.enforce.placeholders import PlaceholderMap
from dlpproxy.enforce.reroute import Reroute
from dlpproxy.enforce.restore import SseRestorer, restore_json
from dlpproxy.engine import Engine
from dlpproxy.errors import DlpError
from dlpproxy.heap import freeze_startup_heap
from dlpproxy.identity import Directory, load_directory
from dlpproxy.policy import Policy, PolicyHolder
from dlpproxy.providers import BY_NAME, GENERIC, adapter_for
from dlpproxy.providers.base import Request
from dlpproxy.providers.bodies import decode_body
from dlpproxy.providers.services import Service, is_ai_host, load_services, service_for
from dlpproxy.proxy.inspector import Inspector, Verdict, Who, reroute_job, rerouted_event
from dlpproxy.proxy.relay import Relay
from dlpproxy.settings import Settings, default_audit_db

log = logging.getLogger("dlpproxy")
META = "dlpproxy"
REROUTED = "dlpproxy-rerouted"
HEALTH_EVERY_S = 10.0  # local model health probes, for the heartbeat


class DlpAddon:
    def __init__(self) -> None:
        self.inspector: Inspector | None = None
        self.policy: PolicyHolder | None = None
        self.writer: AuditWriter | None = None
        self.services: tuple[Service, ...] | None = None
        self.directory = Directory()
        self.resolve: dict[str, tuple[str, int]] = {}
        self.relay = Relay()
        self._watcher: asyncio.Task[None] | None = None

    def load(self, loader: Any) -> None:
        rules = Settings().rules_dir
        loader.add_option("dlp_rules", str, str(rules), "folder of rule packs")
        loader.add_option("dlp_policy", str, str(rules / "policy.yaml"), "policy file")
        loader.add_option("dlp_services", str, str(rules / "ai-services.yaml"), "AI services")
        loader.add_option("dlp_users", str, str(rules / "users.yaml"), "users and groups")
        loader.add_option("dlp_audit_db", str, str(default_audit_db()), "audit store (SQLite)")
        loader.add_option("dlp_detectors", str, "", "detectors, comma-separated (default set)")
        loader.add_option("dlp_retention_days", str, "0", "delete audit events older (0: keep)")
        loader.add_option("dlp_identity_header", str, "", "trusted user header from an auth proxy")
        loader.add_option(
            "dlp_time_budget_ms", int, int(Settings().time_budget_ms),
            "scan time budget per prompt in ms; a slower scan fails closed",
        )  # fmt: skip
        loader.add_option(
            "dlp_resolve", Sequence[str], [], "HOST=IP:PORT: send HOST's traffic there (tests)"
        )

    def configure(self, updated: set[str]) -> None:
        if not any(name.startswith("dlp_") for name in updated) and self.inspector is not None:
            return
        try:
            self._configure()
        except DlpError as exc:
            raise exceptions.OptionsError(str(exc)) from None

    def _configure(self) -> None:
        opts = ctx.options
        settings = Settings(
            rules_dir=Path(opts.dlp_rules), time_budget_ms=float(opts.dlp_time_budget_ms)
        )
        if opts.dlp_detectors:
            settings = settings.with_detectors(tuple(opts.dlp_detectors.split(",")))
        self.policy = PolicyHolder(Path(opts.dlp_policy))
        self.services = load_services(Path(opts.dlp_services), frozenset(BY_NAME))
        self.directory = load_directory(Path(opts.dlp_users))
        self.resolve = _parse_resolve(opts.dlp_resolve)
        salt = audit_salt(Path(opts.dlp_audit_db))
        if self.writer is not None:
            self.writer.close()
        self.writer = AuditWriter(
            Path(opts.dlp_audit_db), retention_days=float(opts.dlp_retention_days)
        )
        self.inspector = Inspector(Engine(settings), salt)
        self.writer.status = self._status()
        log.info("dlpproxy configured: detectors %s", ",".join(self.inspector.engine.names))

    def running(self) -> None:
        """The proxy is up: watch the local models' health for the heartbeat (TUI status), and
        take what start-up loaded out of the garbage collector's walks (`dlpproxy.heap`)."""
        frozen = freeze_startup_heap()
        log.info("dlpproxy: %d start-up objects frozen out of full collections", frozen)
        # mitmproxy calls `running` once its servers listen: "ready" means connections are taken
        names = ",".join(self.inspector.engine.names) if self.inspector else "none"
        log.info("dlpproxy ready: detectors %s", names)
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            if self.policy is not None and self.writer is not None:
                models = self.relay.models_for(self.policy.current())
                try:
                    await models.check()
                except Exception:  # a health probe never takes the proxy down
                    log.exception("local model health check failed")
                self.writer.status = self._status()
            await asyncio.sleep(HEALTH_EVERY_S)

    def _status(self) -> dict[str, Any]:
        """What the heartbeat row says about this proxy: detectors, classifier device, models."""
        engine = self.inspector.engine if self.inspector else None
        device = next(
            (getattr(d, "device", "") for d in (engine.detectors if engine else ())
             if d.name == "classifier"), "",
        )  # fmt: skip
        return {
            "detectors": list(engine.names) if engine else [],
            "classifier_device": device,
            "detector_ms": engine.latency_ms() if engine else {},
            "local_models": self.relay.models.status(),
            "policy_error": self.policy.error if self.policy else "",
        }

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        host = data.client_hello.sni or ""
        if not host and data.context.server.address:
            host = data.context.server.address[0]
        if self.services is None or not is_ai_host(self.services, host):
            data.ignore_connection = True

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if data.server.address and data.server.address[0] in self.resolve:
            data.server.address = self.resolve[data.server.address[0]]

    async def request(self, flow: http.HTTPFlow) -> None:
        if self.services is None or self.inspector is None or self.policy is None:
            return
        host = flow.request.pretty_host
        service = service_for(self.services, host, flow.request.path)
        if service is None:
            return
        policy = self.policy.current()
        if self.policy.error:
            log.warning("policy: %s", self.policy.error)
        who = self._who(flow, service)
        try:
            req = _request(flow, policy.max_body_bytes)
            adapter = adapter_for(req, self.services)
            if adapter is None:  # nothing to scan (a GET, an empty body): not a prompt
                return
            verdict = await self.inspector.inspect(req, adapter, policy, who)
        except DlpError as exc:
            verdict = self.inspector.refuse_raw(host, flow.request.path, policy, who, str(exc))
        except Exception as exc:  # never into mitmproxy: fail closed with the reason
            log.exception("inspection failed")
            reason = f"internal error: {type(exc).__name__}"
            verdict = self.inspector.refuse_raw(host, flow.request.path, policy, who, reason)
        if verdict.decision.action == "reroute" and verdict.adapter is not None:
            await self._reroute(flow, verdict, req, policy)
            return
        self._apply(flow, verdict)

    async def _reroute(
        self, flow: http.HTTPFlow, verdict: Verdict, req: Request, policy: Policy
    ) -> None:
        """Send the flow to our in-process relay, which answers it from the local model.

        mitmproxy streams only what comes from a server, so the relay is that server: the flow
        goes to 127.0.0.1:<relay port> and the relay writes the caller-shaped (streamed) answer.
        The audit event is written when the answer is complete, with what happened.
        """
        writer, event = self.writer, verdict.event

        def done(job: Reroute) -> None:
            if writer is not None:
                writer.record(rerouted_event(job, event))

        job = reroute_job(verdict, req, policy, self.relay.models_for(policy), done)
        flow.metadata[META] = verdict
        flow.metadata[REROUTED] = True
        path = await self.relay.register(job)
        flow.server_conn.via = None  # the relay is on loopback, never behind an upstream proxy
        flow.request.scheme, flow.request.host, flow.request.port = "http", *self.relay.address
        flow.request.path = path
        flow.request.headers.clear()
        flow.request.headers["host"] = f"{self.relay.address[0]}:{self.relay.address[1]}"
        flow.request.content = b""

    def _apply(self, flow: http.HTTPFlow, verdict: Verdict) -> None:
        if self.writer is not None:
            self.writer.record(verdict.event)
        flow.metadata[META] = verdict
        if verdict.answer is not None:
            a = verdict.answer
            flow.response = http.Response.make(a.status, a.body, dict(a.headers))
            return
        if verdict.body is not None:
            flow.request.content = verdict.body
            flow.request.headers["accept-encoding"] = "identity"  # SSE restore reads plain bytes
        flow.request.headers["x-dlpproxy-incident"] = verdict.event.id

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(REROUTED) and flow.response is not None:
            flow.response.stream = True  # the local model's tokens go out as they come
            return
        pmap = _placeholders(flow)
        if pmap is None or flow.response is None:
            return
        if "text/event-stream" in flow.response.headers.get("content-type", ""):
            restorer = SseRestorer(pmap)

            def stream(chunk: bytes) -> bytes:
                return restorer.feed(chunk) if chunk else restorer.flush()

            flow.response.stream = stream

    def response(self, flow: http.HTTPFlow) -> None:
        pmap = _placeholders(flow)
        if pmap is None or flow.response is None or flow.response.stream:
            return
        try:
            body = flow.response.get_content(strict=False) or b""
        except ValueError:
            return
        flow.response.content = restore_json(body, pmap)

    async def websocket_message(self, flow: http.HTTPFlow) -> None:
        """Client messages on WebSockets to AI hosts are scanned like bodies (generic adapter)."""
        if self.services is None or self.inspector is None or self.policy is None:
            return
        if flow.websocket is None or not flow.websocket.messages:
            return
        message = flow.websocket.messages[-1]
        service = service_for(self.services, flow.request.pretty_host, flow.request.path)
        if not message.from_client or service is None:
            return
        policy = self.policy.current()
        who = self._who(flow, service)
        ctype = "application/json" if message.content[:1] in (b"{", b"[") else "text/plain"
        req = Request("WS", flow.request.pretty_host, flow.request.path, (), message.content, ctype)
        try:
            verdict = await self.inspector.inspect(req, GENERIC, policy, who)
        except Exception as exc:  # never into mitmproxy
            log.exception("websocket inspection failed")
            reason = f"internal error: {type(exc).__name__}"
            verdict = self.inspector.refuse_raw(req.host, req.path, policy, who, reason)
        if self.writer is not None:
            self.writer.record(verdict.event)
        if verdict.answer is not None:
            message.drop()
            note = f"dlpproxy blocked a message (incident {verdict.event.id})"
            try:
                ctx.master.commands.call("inject.websocket", flow, True, note.encode(), True)
            except exceptions.CommandError:  # no proxy server (addon unit tests)
                log.info(note)
        elif verdict.body is not None:
            message.content = verdict.body

    async def done(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await self.relay.close()
        if self.writer is not None:
            self.writer.close()
        if self.inspector is not None:
            self.inspector.engine.close()

    def _who(self, flow: http.HTTPFlow, service: Service) -> Who:
        auth = flow.metadata.get("proxyauth")
        auth_user = str(auth[0]) if isinstance(auth, tuple) and auth else ""
        header = ctx.options.dlp_identity_header
        header_user = flow.request.headers.get(header, "") if header else ""
        client = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        user, groups = self.directory.identify(auth_user, header_user, client)
        return Who(user, groups, client, service.name, bool(service.sanctioned))


def _placeholders(flow: http.HTTPFlow) -> PlaceholderMap | None:
    """The placeholder map of a redacted request, to restore its answer (None: nothing to do)."""
    verdict = flow.metadata.get(META)
    return verdict.placeholders if isinstance(verdict, Verdict) else None


def _request(flow: http.HTTPFlow, limit: int) -> Request:
    """A plain Request with the body decoded (gzip/br/zstd...) under the size limit."""
    raw = flow.request.raw_content or b""
    if len(raw) > limit:
        raise DlpError(f"request body of {len(raw)} bytes is over the {limit}-byte limit")
    body = decode_body(raw, flow.request.headers.get("content-encoding"), limit)
    headers = tuple((k, v) for k, v in flow.request.headers.items(multi=True))
    return Request(
        flow.request.method, flow.request.pretty_host, flow.request.path, headers, body,
        flow.request.headers.get("content-type", ""),
    )  # fmt: skip


def _parse_resolve(specs: Sequence[str]) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for spec in specs:
        host, _, target = spec.partition("=")
        ip, _, port = target.rpartition(":")
        if not host or not ip or not port.isdigit():
            raise DlpError(f"dlp_resolve: '{spec}' is not HOST=IP:PORT")
        out[host] = (ip, int(port))
    return out


addons = [DlpAddon()]
