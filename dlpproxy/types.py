"""The plain data that travels through the engine: prompts, findings, scan results."""

from __future__ import annotations

from dataclasses import dataclass, field

# The policy's vocabulary. Detectors may add categories of their own (a company's classifier
# labels), so these are the known ones, not a closed set.
SECRET = "secret"
PII = "pii"
CONFIDENTIAL_MARKING = "confidential_marking"
SOURCE_CODE = "source_code"
MEETING_NOTES = "meeting_notes"
DATA_EXPORT = "data_export"
INTERNAL_CODE = "internal_code"
INTERNAL_DOCUMENT = "internal_document"
CATEGORIES = (
    SECRET,
    PII,
    CONFIDENTIAL_MARKING,
    SOURCE_CODE,
    MEETING_NOTES,
    DATA_EXPORT,
    INTERNAL_CODE,
    INTERNAL_DOCUMENT,
)

SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of user-supplied text and where it sits in the request (JSON path, file name)."""

    text: str
    where: str = ""


@dataclass(frozen=True, slots=True)
class Prompt:
    """The text segments of one request, in order."""

    segments: tuple[Segment, ...]

    @classmethod
    def of_text(cls, text: str, where: str = "") -> Prompt:
        return cls((Segment(text, where),))

    @property
    def size(self) -> int:
        return sum(len(s.text) for s in self.segments)


@dataclass(frozen=True, slots=True)
class Finding:
    """Something sensitive at text[start:end] of one segment.

    `type` is the finer kind (aws_access_key, kr_rrn); `category` is the policy's word for it;
    `rule` names the rule or recogniser that fired; `via` says how it was seen when it was not in
    plain sight (e.g. "base64", "hex", "normalised").
    """

    start: int
    end: int
    type: str
    category: str
    detector: str
    score: float
    severity: str = "medium"
    rule: str = ""
    segment: int = 0
    via: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "type": self.type,
            "category": self.category,
            "detector": self.detector,
            "score": round(self.score, 4),
            "severity": self.severity,
            "rule": self.rule,
            "segment": self.segment,
            "via": self.via,
        }


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The merged findings of all detectors for one prompt, and what the scan cost."""

    findings: tuple[Finding, ...]
    elapsed_ms: float
    detectors: tuple[str, ...] = field(default=())

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(f.category for f in self.findings)
