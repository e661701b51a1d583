"""The personal-data rule pack (`rules/pii.yaml`): recognisers as data, checked on load.

A recogniser names the finding type, its patterns (regex and base score), the validator that
must accept a match (a checksum from `validators`), and context words per language that lift the
score when they appear near the match. Loading fails with a RulePackError naming file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlpproxy.detect.validators import VALIDATORS
from dlpproxy.detect.yamlfile import LINE, check_fields, load_yaml, require
from dlpproxy.errors import RulePackError
from dlpproxy.types import SEVERITIES

# Patterns are matched between ASCII letter/digit boundaries rather than \b: Hangul, Han and
# Arabic letters count as word characters, so `是320102...` or `번호123456-...` has no \b. A match
# must not continue a longer run of digit groups or a decimal number either: `4307 0019 7032 6963`
# inside the IBAN `ES86 4307 0019 7032 6963 9942` is not a card number, nor is `0591029968` in
# the measurement `17.0591029968` a phone number.
BOUNDARY_BEFORE = r"(?<![0-9A-Za-z])(?<![0-9][ -])(?<![0-9]\.)"
BOUNDARY_AFTER = r"(?![0-9A-Za-z])(?![ -][0-9])(?!\.[0-9])"

_PACK_FIELDS = {"version", "min_score", "context_window", "context_boost", "recognisers"}
_WINDOW_FIELDS = {"before", "after"}
_RULE_FIELDS = {"name", "type", "severity", "validator", "patterns", "context", "description"}
_PATTERN_FIELDS = {"name", "regex", "score"}


@dataclass(frozen=True, slots=True)
class PiiPattern:
    name: str
    regex: str
    score: float


@dataclass(frozen=True, slots=True)
class PiiRule:
    """One recogniser: `name` is the rule reported in findings, `type` the finding type."""

    name: str
    type: str
    severity: str
    validator: str
    patterns: tuple[PiiPattern, ...]
    context: dict[str, tuple[str, ...]]

    @property
    def entity(self) -> str:
        """Presidio's entity name for the type (recognisers of one type share it)."""
        return self.type.upper()

    def context_words(self) -> tuple[str, ...]:
        return tuple(word for words in self.context.values() for word in words)


@dataclass(frozen=True, slots=True)
class PiiPack:
    """The whole pack: recognisers plus the scoring knobs shared by all of them."""

    rules: tuple[PiiRule, ...]
    min_score: float
    context_before: int
    context_after: int
    context_boost: float
    source: str


def context_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive regex for a rule's context words.

    Words in Latin letters must stand alone ("nie" is not in "niece"); words in other scripts
    match as substrings, because Korean and Arabic attach particles and Chinese has no spaces
    (주민등록번호는, 身份证号码是, والهوية).
    """
    if not words:
        return None
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        escaped = re.escape(word.lower())
        if word.isascii():
            parts.append(rf"(?<![a-z]){escaped}(?![a-z])")
        else:
            parts.append(escaped)
    return re.compile("|".join(parts), re.IGNORECASE)


def _score(raw: Any, source: str, rule: str, line: int | None) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 1:
        raise RulePackError(source, f"score must be a number in (0, 1], got {raw!r}", rule, line)
    return float(raw)


def _pattern(raw: Any, source: str, rule: str) -> PiiPattern:
    if not isinstance(raw, dict):
        raise RulePackError(source, "each pattern must be a mapping with name, regex, score", rule)
    line = raw.get(LINE)
    check_fields(raw, _PATTERN_FIELDS, source, rule)
    for name in ("name", "regex", "score"):
        require(raw, name, source, rule)
    regex = f"{BOUNDARY_BEFORE}(?:{raw['regex']}){BOUNDARY_AFTER}"
    try:
        re.compile(str(raw["regex"]))
        re.compile(regex)
    except re.error as exc:
        problem = f"pattern '{raw['name']}': bad regex: {exc}"
        raise RulePackError(source, problem, rule, line) from None
    return PiiPattern(str(raw["name"]), regex, _score(raw["score"], source, rule, line))


def _context(raw: Any, source: str, rule: str, line: int | None) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RulePackError(
            source, "context must map a language code to a list of words", rule, line
        )
    context = {}
    for lang, words in raw.items():
        if lang == LINE:
            continue
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise RulePackError(source, f"context '{lang}' must be a list of words", rule, line)
        context[str(lang)] = tuple(words)
    return context


def _rule(raw: Any, source: str, seen: set[str]) -> PiiRule:
    if not isinstance(raw, dict):
        raise RulePackError(source, "each recogniser must be a mapping")
    line = raw.get(LINE)
    name = str(raw.get("name") or "")
    check_fields(raw, _RULE_FIELDS, source, name or None)
    for field in ("name", "type", "severity", "patterns"):
        require(raw, field, source, name or None)
    if name in seen:
        raise RulePackError(source, "duplicate recogniser name", name, line)
    seen.add(name)
    if raw["severity"] not in SEVERITIES:
        problem = f"unknown severity '{raw['severity']}'; expected {'|'.join(SEVERITIES)}"
        raise RulePackError(source, problem, name, line)
    validator = str(raw.get("validator") or "")
    if validator and validator not in VALIDATORS:
        known = ", ".join(sorted(VALIDATORS))
        raise RulePackError(source, f"unknown validator '{validator}'; known: {known}", name, line)
    if not isinstance(raw["patterns"], list):
        raise RulePackError(source, "patterns must be a list", name, line)
    return PiiRule(
        name=name,
        type=str(raw["type"]),
        severity=str(raw["severity"]),
        validator=validator,
        patterns=tuple(_pattern(p, source, name) for p in raw["patterns"]),
        context=_context(raw.get("context"), source, name, line),
    )


def load_pii_pack(path: Path) -> PiiPack:
    """Read and check `path`; every problem is a RulePackError naming the file and line."""
    source = str(path)
    data = load_yaml(path)
    check_fields(data, _PACK_FIELDS, source, None)
    require(data, "recognisers", source, None)
    if not isinstance(data["recognisers"], list):
        raise RulePackError(source, "recognisers must be a list", line=data.get(LINE))
    window = data.get("context_window") or {}
    check_fields(window, _WINDOW_FIELDS, source, None)
    seen: set[str] = set()
    return PiiPack(
        rules=tuple(_rule(raw, source, seen) for raw in data["recognisers"]),
        min_score=float(data.get("min_score", 0.4)),
        context_before=int(window.get("before", 48)),
        context_after=int(window.get("after", 24)),
        context_boost=float(data.get("context_boost", 0.35)),
        source=source,
    )
