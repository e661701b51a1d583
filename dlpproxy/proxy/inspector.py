"""One request to an AI service, from body to decision, without mitmproxy types.

`Inspector.inspect` takes a plain `Request` (the addon builds it from a flow) and returns a
`Verdict`: the decision, the new body when redacted, the answer when blocked, and the audit event.
Every failure becomes a decision: a body that cannot be decoded or parsed, a detector error or a
timeout blocks the prompt when the policy fails closed — a prompt we could not scan does not leave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from dlpproxy.audit import AuditEvent, event_for, joined, new_event_id
from dlpproxy.enforce.placeholders import ConversationMaps, PlaceholderMap, redact
from dlpproxy.enforce.reroute import FAILED_MESSAGE, Reroute
from dlpproxy.engine import Engine
from dlpproxy.errors import DlpError
from dlpproxy.localmodel.client import LocalModels
from dlpproxy.policy import Decision, Policy
from dlpproxy.providers import read_with
from dlpproxy.providers.base import Adapter, Extracted, Request, Response
from dlpproxy.providers.openai_format import blocked_error
from dlpproxy.proxy.history import ScanHistory
from dlpproxy.types import Prompt, ScanResult


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    event: AuditEvent
    body: bytes | None = None
    answer: Response | None = None
    placeholders: PlaceholderMap | None = None
    stream: bool = False
    # reroute: what the local model needs (the answer above is the fallback where none can go)
    adapter: Adapter | None = None
    extracted: Extracted | None = None


@dataclass(slots=True)
class Who:
    user: str = ""
    groups: tuple[str, ...] = ()
    client: str = ""
    service: str = ""
    sanctioned: bool = True


class Inspector:
    """Scans, decides and prepares enforcement for requests to AI services."""

    def __init__(self, engine: Engine, salt: bytes, history: ScanHistory | None = None):
        self.engine = engine
        self.salt = salt
        self.history = history or ScanHistory()
        self.conversations = ConversationMaps()

    async def inspect(self, req: Request, adapter: Adapter, policy: Policy, who: Who) -> Verdict:
        incident = new_event_id()
        if not who.sanctioned and policy.unsanctioned == "block":
            reason = f"{who.service or req.host} is not a sanctioned AI service"
            return self._refuse(req, None, policy, who, incident, reason, adapter)
        try:
            reading = read_with(adapter, req)
            adapter, extracted = reading.adapter, reading.extracted
        except DlpError as exc:
            return self._refuse(
                req, None, policy, who, incident, f"unreadable body: {exc}", adapter
            )
        try:
            result = await self.history.scan(self.engine, extracted.prompt)
        except DlpError as exc:
            return self._refuse(
                req, extracted, policy, who, incident, f"not scanned: {exc}", adapter
            )
        decision = policy.decide(result.findings, who.groups, req.host)
        if extracted.unscanned and policy.fail_closed and decision.action != "block":
            parts = "; ".join(f"{u.where}: {u.reason}" for u in extracted.unscanned)
            return self._refuse(
                req, extracted, policy, who, incident, f"not scanned: {parts}", adapter
            )
        if not who.sanctioned and decision.action == "allow" and policy.unsanctioned == "monitor":
            decision = Decision("monitor", "unsanctioned-service", (), "", "", ("unsanctioned",))
        return self._enforce(req, adapter, extracted, result, decision, policy, who, incident)

    def refuse_raw(self, host: str, path: str, policy: Policy, who: Who, reason: str) -> Verdict:
        """A refusal for a request that never became a `Request` (body over the limit, ...)."""
        req = Request("POST", host, path)
        return self._refuse(req, None, policy, who, new_event_id(), reason, None)

    def _enforce(
        self, req: Request, adapter: Adapter, extracted: Extracted, result: ScanResult,
        decision: Decision, policy: Policy, who: Who, incident: str,
    ) -> Verdict:  # fmt: skip
        event = self._event(req, extracted.prompt, result, decision, policy, who, incident)
        if decision.action == "reroute":
            # the caller (proxy relay or gateway) sends it to the local model; where it cannot
            # (a WebSocket message), the block answer stands
            message = _message(policy.messages.get("block", decision.message), decision, incident)
            answer = adapter.block(req, extracted, message, incident)
            return Verdict(decision, event, answer=answer, stream=extracted.stream,
                           adapter=adapter, extracted=extracted)  # fmt: skip
        if decision.action == "block":
            message = _message(decision.message, decision, incident)
            answer = adapter.block(req, extracted, message, incident)
            return Verdict(decision, event, answer=answer, stream=extracted.stream)
        if decision.action == "redact":
            pmap = self.conversations.get(_conversation(req, extracted, who))
            replacements: dict[int, str] = {}
            for index, segment in enumerate(extracted.prompt.segments):
                mine = [f for f in decision.findings if f.segment == index]
                if not mine:
                    continue
                if not extracted.places[index].rewritable:
                    reason = f"{segment.where} holds {mine[0].type} and cannot be rewritten"
                    return self._refuse(req, extracted, policy, who, incident, reason, adapter)
                replacements[index] = redact(segment.text, mine, pmap)
            body = adapter.rewrite(req, replacements)
            return Verdict(decision, event, body=body, placeholders=pmap, stream=extracted.stream)
        return Verdict(decision, event, stream=extracted.stream)

    def _refuse(
        self, req: Request, extracted: Extracted | None, policy: Policy, who: Who,
        incident: str, reason: str, adapter: Adapter | None,
    ) -> Verdict:  # fmt: skip
        """Fail closed (or, with fail_closed off, let it pass as `monitor`) with the reason."""
        action = "block" if policy.fail_closed else "monitor"
        decision = Decision(action, "fail-closed" if policy.fail_closed else "fail-open",
                            (), "", "", (reason,))  # fmt: skip
        prompt = extracted.prompt if extracted else Prompt(())
        event = self._event(req, prompt, None, decision, policy, who, incident)
        if action != "block":
            return Verdict(decision, event)
        message = f"dlpproxy blocked this request: {reason}. Incident {incident}."
        answer = None
        if adapter is not None and extracted is not None:
            try:
                answer = adapter.block(req, extracted, message, incident)
            except DlpError:
                answer = None
        return Verdict(decision, event, answer=answer or plain_block(message, incident))

    def _event(
        self, req: Request, prompt: Prompt, result: ScanResult | None, decision: Decision,
        policy: Policy, who: Who, incident: str,
    ) -> AuditEvent:  # fmt: skip
        return event_for(
            prompt, result, decision, salt=self.salt, evidence=policy.evidence_capture,
            event_id=incident, user=who.user, client=who.client, host=req.host,
            service=who.service, path=req.route, request_bytes=len(req.body),
        )  # fmt: skip


def reroute_job(
    verdict: Verdict, req: Request, policy: Policy, models: LocalModels,
    on_done: Callable[[Reroute], None] | None = None,
) -> Reroute:  # fmt: skip
    """The reroute of a `reroute` verdict: the local models to try, in order, and the notice."""
    assert verdict.adapter is not None and verdict.extracted is not None
    route = policy.reroute.route(verdict.decision.model)
    chosen = models.pick(route)
    categories = ", ".join(c.replace("_", " ") for c in verdict.decision.categories)
    return Reroute(
        verdict.adapter, req, verdict.extracted, chosen, verdict.event.id,
        categories=categories or "sensitive data", banner=policy.reroute.banner,
        failed_message=policy.messages.get("reroute_failed", FAILED_MESSAGE), on_done=on_done,
    )  # fmt: skip


def rerouted_event(job: Reroute, event: AuditEvent) -> AuditEvent:
    """The audit event once the local model answered (or not): the outcome joins the reason."""
    action = "reroute" if job.answered_by else "block"
    return replace(event, action=action, reason=joined(event.reason, job.outcome))


def plain_block(message: str, incident: str) -> Response:
    """A provider-neutral refusal (see `blocked_error`)."""
    return blocked_error(message, incident)


def _message(template: str, decision: Decision, incident: str) -> str:
    categories = ", ".join(c.replace("_", " ") for c in decision.categories) or "sensitive data"
    try:
        return template.format(categories=categories, incident=incident)
    except (KeyError, IndexError, ValueError):
        return f"{template} (incident {incident})"


def _conversation(req: Request, extracted: Extracted, who: Who) -> str:
    """Conversation key: user + host + the first segment (clients resend the whole chat)."""
    first = extracted.prompt.segments[0].text if extracted.prompt.segments else ""
    raw = f"{who.user}\x00{who.client}\x00{req.host}\x00{first[:4096]}"
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
