"""The gateway's request path: key -> app, checks, scan and decision, then provider or local model.

Every prompt goes through the proxy's `Inspector` with the current policy, as the app's user and
groups, with the provider's host as the destination. allow/monitor: forwarded with the provider
key the gateway holds; redact: the rewritten body is forwarded and the answer restored; block:
the adapter's answer; reroute: the local model answers in the caller's format. When the provider
is down, over quota or failing (before a byte went to the app) and `fallback_to_local` is on, the
local model answers instead. A request for a local model by name is answered by it directly.
Nothing is sent to the provider unless the decision says so, on every error path.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from dlpproxy.audit import AuditEvent, AuditWriter, joined
from dlpproxy.errors import DlpError
from dlpproxy.gateway.config import AppKey, GatewayConfig, GatewayConfigHolder
from dlpproxy.gateway.formats import ANTHROPIC, ENDPOINTS, OPENAI, Endpoint, error, style_of
from dlpproxy.gateway.local import LocalAnswers
from dlpproxy.gateway.upstream import Answer, ProviderDown, Upstream
from dlpproxy.httpserver import HttpRequest, HttpResponse
from dlpproxy.policy import Policy, PolicyHolder
from dlpproxy.providers.base import INCIDENT_HEADER, Request, Response
from dlpproxy.providers.json_api import is_json_type
from dlpproxy.proxy.inspector import Inspector, Verdict, Who

log = logging.getLogger("dlpproxy.gateway")
MODELS = "/v1/models"
SERVED = ", ".join([*ENDPOINTS, MODELS])


class Gateway:
    """Answers one HTTP request at a time (`handle`), for `HttpServer`."""

    def __init__(
        self, config: GatewayConfig | GatewayConfigHolder, policy: PolicyHolder,
        inspector: Inspector, writer: AuditWriter | None = None,
    ) -> None:  # fmt: skip
        # a holder: gateway.yaml is reloaded when it changes (`_refresh`, per request)
        self.configs = config if isinstance(config, GatewayConfigHolder) else None
        self.config = config.value if isinstance(config, GatewayConfigHolder) else config
        self.policy = policy
        self.inspector = inspector
        self.writer = writer
        self.upstreams = {name: Upstream(cfg) for name, cfg in self.config.providers.items()}
        self._retired: list[Upstream] = []  # clients of replaced providers, closed at the end
        self._told = ""  # the reload error last logged
        self.local = LocalAnswers(self.record)

    async def handle(self, req: HttpRequest) -> HttpResponse:
        style = style_of(req.path, req.header("anthropic-version") is not None)
        try:
            return await self._route(req, style)
        except Exception:  # a bug answers 500 in the caller's format; nothing was forwarded
            log.exception("gateway failed on %s %s", req.method, req.path)
            return error(style, 500, "internal error in the dlpproxy gateway", "internal_error")

    async def aclose(self) -> None:
        for upstream in [*self.upstreams.values(), *self._retired]:
            await upstream.aclose()
        await self.local.aclose()
        if self.writer is not None:
            self.writer.close()

    def record(self, event: AuditEvent) -> None:
        if self.writer is not None:
            self.writer.record(event)

    def _refresh(self) -> None:
        """Take a changed gateway.yaml into use: keys and fallback at once; a provider whose
        settings changed gets a new client, and the old one (maybe mid-stream) is closed when the
        gateway closes. A broken edit keeps the previous configuration and is logged once."""
        if self.configs is None:
            return
        config = self.configs.current()
        if self.configs.error != self._told:
            self._told = self.configs.error
            if self._told:
                log.warning("gateway configuration: %s", self._told)
        if config is self.config:
            return
        upstreams = {}
        for name, cfg in config.providers.items():
            old = self.upstreams.get(name)
            upstreams[name] = old if old is not None and old.config == cfg else Upstream(cfg)
        self._retired += [u for n, u in self.upstreams.items() if upstreams.get(n) is not u]
        self.config, self.upstreams = config, upstreams
        log.info(
            "gateway configuration reloaded from %s: providers %s, %d app keys",
            config.source, ", ".join(config.providers) or "none", len(config.keys),
        )  # fmt: skip

    async def _route(self, req: HttpRequest, style: str) -> HttpResponse:
        self._refresh()
        endpoint = ENDPOINTS.get(req.path)
        if endpoint is None and req.path != MODELS:
            return error(OPENAI, 404, f"unknown path {req.path}; served: {SERVED}", "unknown_url")
        app = self._app(req)
        if app is None:
            message = "invalid or missing gateway key (send it as 'Authorization: Bearer KEY' or "
            return error(style, 401, message + "'x-api-key: KEY')", "invalid_api_key")
        wanted = "GET" if endpoint is None else "POST"
        if req.method != wanted:
            return error(style, 405, f"{req.path} takes {wanted}, not {req.method}")
        policy = self.policy.current()
        if self.policy.error:
            log.warning("policy: %s", self.policy.error)
        if endpoint is None:
            return self._model_list(style, policy)
        upstream = self.upstreams.get(endpoint.provider)
        if upstream is None:
            problem = f"this gateway has no '{endpoint.provider}' provider configured"
            return error(style, 404, problem, "provider_not_configured")
        who = Who(app.app, app.groups, req.client, f"gateway:{endpoint.provider}")
        return await self._prompt(req, endpoint, upstream, policy, who)

    def _app(self, req: HttpRequest) -> AppKey | None:
        auth = req.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
        return self.config.app_for(key or (req.header("x-api-key") or "").strip())

    async def _prompt(
        self, req: HttpRequest, endpoint: Endpoint, upstream: Upstream, policy: Policy, who: Who
    ) -> HttpResponse:
        doc = self._body(req, endpoint, upstream, policy, who)
        if isinstance(doc, HttpResponse):
            return doc
        model = str(doc.get("model") or "")
        offered = not upstream.config.models or model in upstream.config.models
        if not offered and model not in policy.local_models:
            message = f"model '{model}' is not offered by this gateway (GET {MODELS} lists them)"
            return error(endpoint.style, 404, message, "model_not_found")
        request = Request(
            "POST", upstream.config.host, req.target, req.headers, req.body,
            req.header("content-type") or "",
        )  # fmt: skip
        verdict = await self._inspect(request, endpoint, policy, who)
        if verdict.decision.action == "reroute" and verdict.adapter is not None:
            return await self.local.reroute(endpoint, request, verdict, policy)
        if verdict.answer is not None:
            self.record(verdict.event)
            return _native(verdict.answer, endpoint.style)
        if model in policy.local_models:
            note = f"the app asked for local model '{model}'"

            def unavailable(outcome: str) -> HttpResponse:
                message = f"dlpproxy gateway: {outcome}. Incident {verdict.event.id}."
                return error(
                    endpoint.style, 503, message, "local_model_unavailable", verdict.event.id
                )

            return await self.local.fallback(
                endpoint, request, verdict, policy, (model,), note, unavailable
            )
        return await self._forward(endpoint, upstream, req, request, verdict, policy)

    def _body(
        self, req: HttpRequest, endpoint: Endpoint, upstream: Upstream, policy: Policy, who: Who
    ) -> dict[str, Any] | HttpResponse:
        """The body's JSON object; too big, not JSON, or not a JSON object: the refusal
        (audited) before any scan."""
        mime = (req.header("content-type") or "").split(";", 1)[0].strip().lower()
        limit = policy.max_body_bytes
        if len(req.body) > limit:
            status, problem = 413, f"body of {len(req.body)} bytes is over the {limit}-byte limit"
        elif not is_json_type(mime):
            status, problem = 415, f"expected content-type application/json, got '{mime}'"
        else:
            try:
                doc = json.loads(req.body)
                if isinstance(doc, dict):
                    return doc
                status, problem = 400, "not a JSON object"
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                status, problem = 400, f"malformed JSON body ({exc})"
        verdict = self.inspector.refuse_raw(upstream.config.host, req.path, policy, who, problem)
        self.record(verdict.event)
        message = f"dlpproxy gateway: {problem}; nothing was sent. Incident {verdict.event.id}."
        return error(endpoint.style, status, message, "request_refused", verdict.event.id)

    async def _inspect(
        self, request: Request, endpoint: Endpoint, policy: Policy, who: Who
    ) -> Verdict:
        try:
            return await self.inspector.inspect(request, endpoint.adapter, policy, who)
        except DlpError as exc:
            reason = str(exc)
        except Exception as exc:  # fail closed with the reason, as the proxy does
            log.exception("inspection failed")
            reason = f"internal error: {type(exc).__name__}"
        return self.inspector.refuse_raw(request.host, request.route, policy, who, reason)

    async def _forward(
        self, endpoint: Endpoint, upstream: Upstream, req: HttpRequest, request: Request,
        verdict: Verdict, policy: Policy,
    ) -> HttpResponse:  # fmt: skip
        event = verdict.event
        body = verdict.body if verdict.body is not None else req.body

        def ended(problem: str) -> None:
            self.record(replace(event, reason=joined(event.reason, problem)))

        may_fall_back = self._may_fall_back(endpoint, policy)
        try:
            answer = await upstream.open(
                "POST", req.target, req.headers, body, endpoint.route, verdict.placeholders, ended
            )
        except ProviderDown as exc:
            status, problem = 504 if exc.timed_out else 502, f"dlpproxy gateway: {exc}"

            def down(outcome: str = "") -> HttpResponse:
                message = joined(problem, outcome and f"local fallback {outcome}")
                return error(endpoint.style, status, message, "provider_unavailable", event.id)

            if not may_fall_back:
                self.record(replace(event, reason=joined(event.reason, str(exc))))
                return down()
            note = f"fallback: {exc}"
            return await self.local.fallback(
                endpoint, request, verdict, policy, policy.reroute.route(), note, down
            )
        if answer.retryable and may_fall_back:
            note = f"fallback: provider {upstream.config.name} answered HTTP {answer.status}"
            return await self.local.fallback(
                endpoint, request, verdict, policy, policy.reroute.route(), note,
                lambda _outcome: _passed_on(answer, event.id),
            )  # fmt: skip
        if isinstance(answer.body, bytes):
            self.record(event)
        return _passed_on(answer, event.id)

    def _may_fall_back(self, endpoint: Endpoint, policy: Policy) -> bool:
        """Embeddings never fall back: another model's vectors do not match the app's index."""
        return self.config.fallback_to_local and endpoint.chat and bool(policy.reroute.route())

    def _model_list(self, style: str, policy: Policy) -> HttpResponse:
        models = [(m, up.config.name) for up in self.upstreams.values() for m in up.config.models]
        data: list[dict[str, object]]
        models += [(name, "dlpproxy-local") for name in policy.local_models]
        if style == ANTHROPIC:
            data = [{"type": "model", "id": m, "display_name": m,
                     "created_at": "1970-01-01T00:00:00Z"} for m, _ in models]  # fmt: skip
            doc: dict[str, object] = {
                "data": data, "has_more": False,
                "first_id": models[0][0] if models else None,
                "last_id": models[-1][0] if models else None,
            }  # fmt: skip
        else:
            data = [{"id": m, "object": "model", "created": 0, "owned_by": owner}
                    for m, owner in models]  # fmt: skip
            doc = {"object": "list", "data": data}
        return HttpResponse(200, (("content-type", "application/json"),), json.dumps(doc).encode())


def _passed_on(answer: Answer, incident: str) -> HttpResponse:
    return HttpResponse(answer.status, (*answer.headers, (INCIDENT_HEADER, incident)), answer.body)


def _native(answer: Response, style: str) -> HttpResponse:
    """A refusal as the caller's format wants it: a plain OpenAI error body becomes Anthropic's."""
    if style == ANTHROPIC and answer.status >= 400:
        try:
            doc = json.loads(answer.body)
            inner = doc.get("error") if doc.get("type") != "error" else None
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            inner = None
        if isinstance(inner, dict):
            converted = error(ANTHROPIC, answer.status, str(inner.get("message", "")))
            extra = tuple((k, v) for k, v in answer.headers if k.lower() != "content-type")
            return HttpResponse(answer.status, (*converted.headers, *extra), converted.body)
    return HttpResponse(answer.status, answer.headers, answer.body)
