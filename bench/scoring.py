"""Scoring a tool's findings against labelled records, as the data READMEs define it.

A positive span counts as detected when a kept finding overlaps it (the type need not agree: the
tools name types differently). A negative counts as a false positive when a kept finding lies
anywhere in it (`region="record"`, the secrets set) or overlaps one of its decoys
(`region="decoys"`, the PII set, where other words may rightly be flagged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.datasets import Record, Span


@dataclass(frozen=True, slots=True)
class Found:
    """One finding as a tool reported it; `category` is empty for tools without categories."""

    start: int
    end: int
    type: str
    category: str = ""


@dataclass(frozen=True, slots=True)
class Score:
    """Recall over positive spans and false positives over negatives, overall and per type."""

    spans: int
    detected: int
    negatives: int
    false_positives: int
    spans_by_type: Mapping[str, int] = field(default_factory=dict)
    detected_by_type: Mapping[str, int] = field(default_factory=dict)
    decoys_by_type: Mapping[str, int] = field(default_factory=dict)
    flagged_by_type: Mapping[str, int] = field(default_factory=dict)
    missed_ids: tuple[str, ...] = ()
    false_positive_ids: tuple[str, ...] = ()

    @property
    def recall(self) -> float:
        return self.detected / self.spans if self.spans else 0.0

    @property
    def fp_rate(self) -> float:
        return self.false_positives / self.negatives if self.negatives else 0.0

    def recall_of(self, types: Iterable[str]) -> tuple[int, int]:
        """(detected, total) over the positive spans of the given types."""
        wanted = list(types)
        return (
            sum(self.detected_by_type.get(t, 0) for t in wanted),
            sum(self.spans_by_type.get(t, 0) for t in wanted),
        )

    def flagged_of(self, types: Iterable[str]) -> tuple[int, int]:
        """(flagged, total) over the decoys of the given types."""
        wanted = list(types)
        return (
            sum(self.flagged_by_type.get(t, 0) for t in wanted),
            sum(self.decoys_by_type.get(t, 0) for t in wanted),
        )


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """Whether two half-open spans share at least one character."""
    return a_start < b_end and b_start < a_end


def _hit(span: Span, found: Sequence[Found]) -> bool:
    return any(overlaps(span.start, span.end, f.start, f.end) for f in found)


def score(
    records: Sequence[Record],
    findings: Mapping[str, Sequence[Found]],
    keep: Callable[[Found], bool] = lambda f: True,
    region: str = "record",
) -> Score:
    """Score `findings` (record id -> findings) on `records`, counting what `keep` accepts."""
    if region not in ("record", "decoys"):
        raise ValueError(f"region must be 'record' or 'decoys', not {region!r}")
    spans, detected, decoys, flagged = (
        Counter[str](),
        Counter[str](),
        Counter[str](),
        Counter[str](),
    )
    missed: list[str] = []
    wrong: list[str] = []
    negatives = 0
    for record in records:
        kept = [f for f in findings.get(record.id, ()) if keep(f)]
        if record.positive:
            for span in record.spans:
                spans[span.type] += 1
                detected[span.type] += _hit(span, kept)
                if not _hit(span, kept):
                    missed.append(record.id)
            continue
        negatives += 1
        if region == "record":
            hits = [bool(kept)]
        else:
            hits = [_hit(decoy, kept) for decoy in record.decoys]
            for decoy, hit in zip(record.decoys, hits, strict=True):
                decoys[decoy.type] += 1
                flagged[decoy.type] += hit
        if any(hits):
            wrong.append(record.id)
    return Score(
        spans=sum(spans.values()),
        detected=sum(detected.values()),
        negatives=negatives,
        false_positives=len(wrong),
        spans_by_type=dict(spans),
        detected_by_type=dict(detected),
        decoys_by_type=dict(decoys),
        flagged_by_type=dict(flagged),
        missed_ids=tuple(dict.fromkeys(missed)),
        false_positive_ids=tuple(wrong),
    )
