"""Keywords and markings: classification marks, company code names, customer lists.

Rules are data (`rules/keywords.yaml`): groups of literal terms, each group with a finding type,
category and severity. All terms of all groups compile into one hyperscan literal database, so a
customer list of thousands of names costs one pass over the text. Terms made of Latin letters
match as whole words (so "secret" does not fire inside "secretary"); terms in scripts written
without spaces (Korean, Chinese, Japanese) match anywhere.

Pack format::

    version: 1
    groups:
      - id: classification-marks      # unique, [a-z0-9-]+
        description: document classification marks
        type: classification_mark     # finding type
        category: confidential_marking
        severity: high                # low|medium|high|critical
        score: 0.9                    # optional, default 0.9
        case_sensitive: false         # optional, default false
        terms: [confidential, 대외비, 机密]
        examples: {positive: [...], negative: [...]}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlpproxy.detect.hyperscan_db import HyperscanDb, char_offsets, hyperscan
from dlpproxy.detect.yamlfile import check_fields, load_yaml, require
from dlpproxy.errors import RulePackError
from dlpproxy.settings import Settings
from dlpproxy.types import CATEGORIES, SEVERITIES, Finding

GROUP_FIELDS = {
    "id", "description", "type", "category", "severity", "score", "case_sensitive", "terms",
    "examples",
}  # fmt: skip
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_WORDLIKE = re.compile(r"[A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class KeywordGroup:
    id: str
    description: str
    type: str
    category: str
    severity: str
    score: float
    case_sensitive: bool
    terms: tuple[str, ...]
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()


def load_keyword_pack(path: Path) -> tuple[KeywordGroup, ...]:
    """Load and validate a keyword pack; RulePackError names the file, line and group."""
    data = load_yaml(path)
    check_fields(data, {"version", "groups"}, str(path), None)
    if data.get("version") != 1:
        raise RulePackError(str(path), "expected 'version: 1'", line=data.get("__line__"))
    groups: list[KeywordGroup] = []
    seen: set[str] = set()
    for raw in data.get("groups") or []:
        group = _group(raw, str(path))
        if group.id in seen:
            raise RulePackError(str(path), "duplicate group id", group.id, raw.get("__line__"))
        seen.add(group.id)
        groups.append(group)
    return tuple(groups)


def _group(raw: Any, source: str) -> KeywordGroup:
    if not isinstance(raw, dict):
        raise RulePackError(source, "each group must be a mapping")
    line = raw.get("__line__")
    gid = str(raw.get("id", ""))
    check_fields(raw, GROUP_FIELDS, source, gid or None)
    for name in ("id", "description", "type", "terms"):
        require(raw, name, source, gid or None)
    if not _ID.match(gid):
        raise RulePackError(source, "id must match [a-z0-9-]+", gid, line)
    severity = str(raw.get("severity", "high"))
    if severity not in SEVERITIES:
        raise RulePackError(
            source, f"severity '{severity}' not in {'|'.join(SEVERITIES)}", gid, line
        )
    category = str(raw.get("category", CATEGORIES[2]))
    terms = raw["terms"]
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise RulePackError(source, "terms must be a list of non-empty strings", gid, line)
    examples = raw.get("examples") or {}
    if not isinstance(examples, dict) or set(examples) - {"positive", "negative", "__line__"}:
        raise RulePackError(
            source, "examples takes only 'positive' and 'negative' lists", gid, line
        )
    return KeywordGroup(
        id=gid,
        description=str(raw["description"]),
        type=str(raw["type"]),
        category=category,
        severity=severity,
        score=float(raw.get("score", 0.9)),
        case_sensitive=bool(raw.get("case_sensitive", False)),
        terms=tuple(t.strip() for t in terms),
        positive=tuple(examples.get("positive") or ()),
        negative=tuple(examples.get("negative") or ()),
    )


class KeywordDetector:
    """Finds the terms of keyword groups in one hyperscan pass."""

    name = "keywords"

    def __init__(self, groups: tuple[KeywordGroup, ...]):
        self.groups = groups
        self.categories = frozenset(g.category for g in groups)
        self._terms: list[tuple[KeywordGroup, str]] = [(g, t) for g in groups for t in g.terms]
        self._db: HyperscanDb | None = None
        if self._terms:
            flags = [
                hyperscan.HS_FLAG_SOM_LEFTMOST
                | (0 if g.case_sensitive else hyperscan.HS_FLAG_CASELESS)
                for g, _ in self._terms
            ]
            self._db = HyperscanDb([t.encode() for _, t in self._terms], flags, literal=True)

    def quick(self, text: str) -> list[Finding]:
        """One hyperscan literal pass: always quick."""
        return self.detect(text)

    def detect(self, text: str) -> list[Finding]:
        if self._db is None or not text:
            return []
        data = text.encode("utf-8", "surrogatepass")
        hits = self._db.spans(data)
        if not hits:
            return []
        to_char = char_offsets(data, {o for _, s, e in hits for o in (s, e)}, len(text))
        found: dict[tuple[int, int], Finding] = {}
        for term_id, b_start, b_end in hits:
            group, term = self._terms[term_id]
            start, end = to_char(b_start), to_char(b_end)
            if _WORDLIKE.match(term[0]) and start > 0 and _is_word(text[start - 1]):
                continue
            if _WORDLIKE.match(term[-1]) and end < len(text) and _is_word(text[end]):
                continue
            f = Finding(start, end, group.type, group.category, self.name, group.score,
                        group.severity, group.id)  # fmt: skip
            kept = found.get((start, end))
            if kept is None or (f.score, f.severity) > (kept.score, kept.severity):
                found[(start, end)] = f
        return sorted(found.values(), key=lambda f: (f.start, f.end))

    def detect_batch(self, texts: list[str]) -> list[list[Finding]]:
        return [self.detect(t) for t in texts]


def _is_word(ch: str) -> bool:
    return (ch.isalnum() and ch.isascii()) or ch == "_"


def build(settings: Settings) -> KeywordDetector:
    """The keywords detector from `rules/keywords.yaml` (a missing file is a clear error)."""
    path = settings.rules_dir / "keywords.yaml"
    if not path.is_file():
        raise RulePackError(str(path), "keyword pack not found (set DLPPROXY_RULES_DIR)")
    return KeywordDetector(load_keyword_pack(path))
