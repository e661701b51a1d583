"""Answers from the company's local models: policy reroutes, provider fallbacks, embeddings.

A reroute goes through `answer_locally` exactly as in the proxy (banner, notice header, the
policy's failure message). A fallback (the provider is down, or the app named a local model)
answers without the banner; when no local model answers either, the caller's `failed` answer
goes out instead (the provider's own 429/5xx, or our error). The audit event is written once the
answer is complete, with what happened in its reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dlpproxy.audit import AuditEvent, joined
from dlpproxy.enforce.reroute import (
    FAILED_MESSAGE,
    INCIDENT_HEADER,
    NOTICE_HEADER,
    Reroute,
    answer_locally,
)
from dlpproxy.gateway.embeddings import EMBEDDINGS
from dlpproxy.gateway.formats import Endpoint
from dlpproxy.httpserver import HttpResponse
from dlpproxy.localmodel.client import LocalModelError, LocalModelPool
from dlpproxy.policy import Policy
from dlpproxy.providers import read_with
from dlpproxy.providers.base import Request
from dlpproxy.proxy.inspector import Verdict, reroute_job, rerouted_event

Failed = Callable[[str], HttpResponse]


class LocalAnswers:
    """The local model clients for the current policy, and the ways the gateway uses them."""

    def __init__(self, record: Callable[[AuditEvent], None]) -> None:
        self.record = record
        self.pool = LocalModelPool()  # rebuilt when the policy's local models change

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def reroute(
        self, endpoint: Endpoint, request: Request, verdict: Verdict, policy: Policy
    ) -> HttpResponse:
        """The policy said reroute: the local model answers, or the prompt is refused."""
        if not endpoint.chat:
            names = policy.reroute.route(verdict.decision.model)
            return await self._embed(request, verdict, policy, names, "", None)
        event = verdict.event

        def done(job: Reroute) -> None:
            self.record(rerouted_event(job, event))

        job = reroute_job(verdict, request, policy, self.pool.current(policy.local_models), done)
        return await answer_locally(job)

    async def fallback(
        self, endpoint: Endpoint, request: Request, verdict: Verdict, policy: Policy,
        names: tuple[str, ...], note: str, failed: Failed,
    ) -> HttpResponse:  # fmt: skip
        """A prompt the provider may see, answered locally instead (`note` says why)."""
        if not endpoint.chat:
            return await self._embed(request, verdict, policy, names, note, failed)
        models = self.pool.current(policy.local_models)
        chosen = models.pick(names)
        reading = read_with(endpoint.adapter, request)  # the original text: the model is ours
        base = replace(verdict.event, reason=joined(verdict.event.reason, note))

        def done(job: Reroute) -> None:
            event = rerouted_event(job, base)
            self.record(event if job.answered_by else replace(event, action=base.action))

        job = Reroute(
            reading.adapter, request, reading.extracted, chosen, base.id, banner="", on_done=done
        )
        answer = await answer_locally(job)
        return answer if job.answered_by else failed(job.outcome)

    async def _embed(
        self, request: Request, verdict: Verdict, policy: Policy, names: tuple[str, ...],
        note: str, failed: Failed | None,
    ) -> HttpResponse:  # fmt: skip
        """Embeddings from the first local model that makes them; else refused or `failed`."""
        models = self.pool.current(policy.local_models)
        doc: dict[str, Any] = json.loads(request.body)
        event = replace(verdict.event, reason=joined(verdict.event.reason, note))
        errors: list[str] = []
        for name in (n for n in names if n in models.names()):
            try:
                result = await models.get(name).embeddings(doc)
            except LocalModelError as exc:
                errors.append(f"{name}: {exc}")
                continue
            outcome = f"answered by local model '{name}'"
            self.record(replace(event, action="reroute", reason=joined(event.reason, outcome)))
            headers = (("content-type", "application/json"), (NOTICE_HEADER, name),
                       (INCIDENT_HEADER, event.id))  # fmt: skip
            return HttpResponse(200, headers, json.dumps(result).encode())
        reason = "; ".join(errors) or "no local model configured"
        outcome = f"refused: no local model answered ({reason})"
        action = "block" if failed is None else verdict.event.action
        self.record(replace(event, action=action, reason=joined(event.reason, outcome)))
        if failed is not None:
            return failed(outcome)
        message = _message(policy, verdict, reason)
        answer = EMBEDDINGS.block(request, EMBEDDINGS.extract(request), message, event.id)
        return HttpResponse(
            answer.status, (*answer.headers, (NOTICE_HEADER, "failed")), answer.body
        )


def _message(policy: Policy, verdict: Verdict, reason: str) -> str:
    template = policy.messages.get("reroute_failed", FAILED_MESSAGE)
    categories = ", ".join(c.replace("_", " ") for c in verdict.decision.categories)
    try:
        return template.format(
            categories=categories or "sensitive data", incident=verdict.event.id, reason=reason
        )
    except (KeyError, IndexError, ValueError):
        return f"{template} ({reason}; incident {verdict.event.id})"
