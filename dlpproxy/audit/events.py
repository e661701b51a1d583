"""Turning a scan and a decision into an audit event that holds no raw value."""

from __future__ import annotations

import hashlib

from dlpproxy.audit.store import AuditEvent, FindingRecord, new_event_id
from dlpproxy.masking import excerpt, value_hash
from dlpproxy.policy import Decision
from dlpproxy.types import Finding, Prompt, ScanResult


def joined(*reasons: str) -> str:
    """An event's reasons as one text: the non-empty ones, in order, separated by "; "."""
    return "; ".join(r for r in reasons if r)


def event_for(
    prompt: Prompt,
    result: ScanResult | None,
    decision: Decision,
    *,
    salt: bytes,
    evidence: bool = False,
    event_id: str = "",
    **context: str | int,
) -> AuditEvent:
    """The event for one decision (with `event_id`, else a fresh id); `context` fills user,
    client, host, service, path, sizes."""
    records = []
    findings = result.findings if result else ()
    for f in findings:
        original = prompt.segments[f.segment].text
        text = _hide_others(original, f, findings)
        shown = excerpt(text, f.start, f.end) if not f.via else f"[{f.via}]"
        digest = value_hash(original[f.start : f.end], salt)
        fields = (f.type, f.category, f.detector, f.start, f.end, round(f.score, 4), f.severity)
        records.append(FindingRecord(*fields, f.rule, shown, digest, f.segment, f.via))
    joined = "\x1e".join(s.text for s in prompt.segments)
    return AuditEvent(
        id=event_id or new_event_id(),
        action=decision.action,
        would=decision.would,
        rule=decision.rule,
        reason="; ".join(decision.reasons),
        categories=tuple(sorted({r.category for r in records})),
        findings=tuple(records),
        prompt_hash=hashlib.sha256(salt + joined.encode("utf-8", "surrogatepass")).hexdigest(),
        prompt_chars=prompt.size,
        scan_ms=round(result.elapsed_ms, 3) if result else 0.0,
        evidence=joined if evidence else "",
        user=str(context.get("user", "")),
        client=str(context.get("client", "")),
        host=str(context.get("host", "")),
        service=str(context.get("service", "")),
        path=str(context.get("path", "")),
        request_bytes=int(context.get("request_bytes", 0)),
    )


def _hide_others(text: str, f: Finding, findings: tuple[Finding, ...]) -> str:
    """`text` with every other finding near `f` starred out, so an excerpt's context leaks none."""
    lo, hi = max(0, f.start - 16), f.end + 16
    chars: list[str] | None = None
    for other in findings:
        if other is f or other.segment != f.segment or other.end <= lo or other.start >= hi:
            continue
        chars = chars if chars is not None else list(text[lo:hi])
        for i in range(max(other.start, lo), min(other.end, hi, len(text))):
            if not (f.start <= i < f.end):
                chars[i - lo] = "*"
    return text if chars is None else text[:lo] + "".join(chars) + text[hi:]
