"""Secret rule packs: our YAML format and gitleaks TOML, validated into compiled RE2 rules.

Every regex is compiled with RE2 (Go/gitleaks syntax, linear-time matching), so no rule can
backtrack catastrophically. A pack loads completely or raises RulePackError naming the file, the
line and the rule. The YAML format is described in `dlpproxy.detect.secrets`.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import re2

from dlpproxy.detect.yamlfile import LINE, check_fields, load_yaml, require
from dlpproxy.errors import RulePackError
from dlpproxy.types import SECRET, SEVERITIES

log = logging.getLogger(__name__)

PACK_FIELDS = {"version", "allowlist", "stopwords", "rules"}
RULE_FIELDS = {
    "id", "description", "type", "regex", "secret_group", "keywords", "entropy", "allowlist",
    "stopwords", "severity", "category", "score", "examples",
}  # fmt: skip
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TYPE = re.compile(r"^[a-z0-9_]+$")
TARGETS = ("secret", "match", "line")
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Regexes and stopwords that excuse a finding.

    `target` says what the regexes test: the secret, the whole match or its line. With
    `require_all` (gitleaks `condition = "AND"`) every given kind of check must hit; otherwise any
    one does. Stopwords always test the secret, case-insensitively.
    """

    regexes: tuple[Any, ...] = ()
    stopwords: tuple[str, ...] = ()
    target: str = "secret"
    require_all: bool = False


# Merged allowlists are one alternation each; give RE2 room for long stopword lists.
_MERGED = re2.Options()
_MERGED.max_mem = 64 << 20


@dataclass(frozen=True, slots=True)
class Excuses:
    """The allowlists of one rule, merged so that judging a finding costs a few RE2 searches:
    one alternation per regex target, one caseless alternation of stopwords; AND-lists apart."""

    any_regex: tuple[tuple[str, Any], ...] = ()
    stopwords: Any = None
    all_of: tuple[Allowlist, ...] = ()

    @classmethod
    def merge(cls, allowlists: tuple[Allowlist, ...]) -> Excuses:
        any_of = [a for a in allowlists if not a.require_all]
        by_target = []
        for target in TARGETS:
            patterns = [r.pattern for a in any_of if a.target == target for r in a.regexes]
            if patterns:
                merged = "|".join(f"(?:{p})" for p in patterns)
                by_target.append((target, re2.compile(merged, _MERGED)))
        words = sorted({w for a in any_of for w in a.stopwords})
        stop = re2.compile("(?i)" + "|".join(map(re2.escape, words)), _MERGED) if words else None
        return cls(tuple(by_target), stop, tuple(a for a in allowlists if a.require_all))

    def excuse(self, data: bytes, match: Span, secret: Span) -> bool:
        """Whether the finding whose match and secret sit at these byte spans of `data` is
        allowed (gitleaks semantics: any check of a list, or all of an AND-list)."""
        for target, regex in self.any_regex:
            if regex.search(_target(target, data, match, secret)) is not None:
                return True
        if self.stopwords is not None and self.stopwords.search(data[secret[0] : secret[1]]):
            return True
        return any(_all_hit(a, data, match, secret) for a in self.all_of)


def _all_hit(allow: Allowlist, data: bytes, match: Span, secret: Span) -> bool:
    value = data[secret[0] : secret[1]].decode("utf-8", "replace").lower()
    checks = [any(w in value for w in allow.stopwords)] if allow.stopwords else []
    if allow.regexes:
        text = _target(allow.target, data, match, secret)
        checks.append(any(r.search(text) is not None for r in allow.regexes))
    return all(checks) and bool(checks)


def _target(target: str, data: bytes, match: Span, secret: Span) -> bytes:
    """What an allowlist regex reads: the secret, the whole match, or the line holding it."""
    if target == "secret":
        return data[secret[0] : secret[1]]
    if target == "match":
        return data[match[0] : match[1]]
    line_end = data.find(b"\n", match[1])
    return data[data.rfind(b"\n", 0, match[0]) + 1 : len(data) if line_end < 0 else line_end]


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One secret format: an RE2 regex, the group holding the secret, and its filters."""

    id: str
    description: str
    type: str
    regex: Any
    secret_group: int
    severity: str
    keywords: tuple[str, ...] = ()
    entropy: float | None = None
    allowlists: tuple[Allowlist, ...] = ()
    category: str = SECRET
    score: float = 1.0
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    source: str = ""
    line: int | None = None


@dataclass(frozen=True, slots=True)
class RulePack:
    """The rules of one file and its pack-wide allowlists; `notes` lists what was skipped."""

    source: str
    rules: tuple[SecretRule, ...]
    allowlists: tuple[Allowlist, ...] = ()
    notes: tuple[str, ...] = ()


def load_pack(path: Path | str) -> RulePack:
    """Load a pack, choosing the format by extension (.yaml/.yml ours, .toml gitleaks)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        pack = load_yaml_pack(path)
    elif suffix == ".toml":
        pack = load_gitleaks_pack(path)
    else:
        raise RulePackError(str(path), "unknown pack format; expected .yaml, .yml or .toml")
    for note in pack.notes:
        log.info("%s: %s", pack.source, note)
    return pack


def compile_regex(pattern: Any, source: str, rule: str | None, line: int | None) -> Any:
    """Compile with RE2; a construct RE2 lacks (lookaround, backreference) is a RulePackError."""
    if not isinstance(pattern, str) or not pattern:
        raise RulePackError(source, "regex must be a non-empty string", rule, line)
    try:
        return re2.compile(pattern)
    except re2.error as exc:
        raise RulePackError(
            source, f"regex does not compile with RE2 ({exc}): {pattern!r}", rule, line
        ) from None


def load_yaml_pack(path: Path) -> RulePack:
    """Load and validate a pack in our YAML format."""
    source = str(path)
    data = load_yaml(path)
    check_fields(data, PACK_FIELDS, source, None)
    if data.get("version") != 1:
        raise RulePackError(source, "expected 'version: 1'", line=data.get(LINE))
    pack_allow = Allowlist(
        _regexes(data.get("allowlist"), source, None, data.get(LINE)),
        _words(data.get("stopwords"), "stopwords", source, None, data.get(LINE)),
    )
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RulePackError(source, "'rules' must be a non-empty list", line=data.get(LINE))
    rules: list[SecretRule] = []
    seen: dict[str, int | None] = {}
    for raw in raw_rules:
        rule = _yaml_rule(raw, source)
        if rule.id in seen:
            problem = f"duplicate rule id (first defined at line {seen[rule.id]})"
            raise RulePackError(source, problem, rule.id, rule.line)
        seen[rule.id] = rule.line
        rules.append(rule)
    return RulePack(source, tuple(rules), (pack_allow,))


def _yaml_rule(raw: Any, source: str) -> SecretRule:
    if not isinstance(raw, dict):
        raise RulePackError(source, "each rule must be a mapping")
    line = raw.get(LINE)
    rid = str(raw.get("id") or "") or None
    check_fields(raw, RULE_FIELDS, source, rid)
    for name in ("id", "description", "type", "regex", "severity"):
        require(raw, name, source, rid)
    rid = str(raw["id"])
    if not _RULE_ID.match(rid):
        raise RulePackError(source, "id must match [a-z0-9-]+", rid, line)
    if not _TYPE.match(str(raw["type"])):
        raise RulePackError(source, f"type '{raw['type']}' must match [a-z0-9_]+", rid, line)
    severity = str(raw["severity"])
    if severity not in SEVERITIES:
        problem = f"severity '{severity}' not in {'|'.join(SEVERITIES)}"
        raise RulePackError(source, problem, rid, line)
    regex = compile_regex(raw["regex"], source, rid, line)
    keywords = _words(raw.get("keywords"), "keywords", source, rid, line)
    if any(k != k.lower() for k in keywords):
        raise RulePackError(source, f"keywords must be lowercase: {list(keywords)}", rid, line)
    positive, negative = _examples(raw.get("examples"), source, rid, line)
    allow = Allowlist(
        _regexes(raw.get("allowlist"), source, rid, line),
        _words(raw.get("stopwords"), "stopwords", source, rid, line),
    )
    return SecretRule(
        id=rid,
        description=str(raw["description"]),
        type=str(raw["type"]),
        regex=regex,
        secret_group=_secret_group(raw.get("secret_group"), regex, source, rid, line),
        severity=severity,
        keywords=keywords,
        entropy=_number(raw.get("entropy"), "entropy", 0.0, 8.0, source, rid, line),
        allowlists=(allow,) if allow.regexes or allow.stopwords else (),
        category=str(raw.get("category") or SECRET),
        score=_number(raw.get("score"), "score", 0.01, 1.0, source, rid, line) or 1.0,
        positive=positive,
        negative=negative,
        source=source,
        line=line,
    )


def _secret_group(value: Any, regex: Any, source: str, rid: str, line: int | None) -> int:
    """The capture group holding the secret: default 1 when the regex has groups, else 0."""
    groups = int(regex.groups)
    if value is None:
        return 1 if groups else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RulePackError(source, f"secret group must be an integer >= 0: {value!r}", rid, line)
    if value > groups:
        problem = f"secret group {value} but the regex has only {groups} group(s)"
        raise RulePackError(source, problem, rid, line)
    return value


def _number(
    value: Any, name: str, low: float, high: float, source: str, rid: str, line: int | None
) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise RulePackError(source, f"{name} must be a number in [{low}, {high}]", rid, line)
    return float(value)


def _words(
    value: Any, name: str, source: str, rid: str | None, line: int | None
) -> tuple[str, ...]:
    """A list of non-empty strings; stopwords are lowered (they match case-insensitively)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(w, str) and w for w in value):
        raise RulePackError(source, f"{name} must be a list of non-empty strings", rid, line)
    return tuple(w.lower() for w in value) if name == "stopwords" else tuple(value)


def _regexes(value: Any, source: str, rid: str | None, line: int | None) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RulePackError(source, "allowlist must be a list of regexes", rid, line)
    return tuple(compile_regex(p, source, rid, line) for p in value)


def _examples(
    value: Any, source: str, rid: str, line: int | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if value is None:
        return (), ()
    if not isinstance(value, dict) or set(value) - {"positive", "negative", LINE}:
        problem = "examples takes only 'positive' and 'negative' lists"
        raise RulePackError(source, problem, rid, line)
    kinds = ("positive", "negative")
    pos, neg = (_words(value.get(k), f"examples.{k}", source, rid, line) for k in kinds)
    return pos, neg


# --- gitleaks TOML -----------------------------------------------------------------------------

GITLEAKS_TOP = {"title", "description", "minVersion", "extend", "allowlist", "allowlists", "rules"}
GITLEAKS_RULE = {
    "id", "description", "regex", "secretGroup", "entropy", "keywords", "path", "tags",
    "allowlist", "allowlists", "skipReport",
}  # fmt: skip


def load_gitleaks_pack(path: Path) -> RulePack:
    """Load a gitleaks config as is: rules become high-severity `secret` rules, type = id."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulePackError(source, f"cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise RulePackError(
            source, f"invalid TOML: {exc}", line=int(found.group(1)) if found else None
        ) from None
    notes = [f"unknown top-level key '{k}' ignored" for k in sorted(set(data) - GITLEAKS_TOP)]
    if "extend" in data:
        notes.append("[extend] ignored: the base config it names is not loaded")
    tables = _tables(data.get("allowlist"), data.get("allowlists"))
    allows = [(t.get("targetRules"), _gitleaks_allow(t, source, None, None, notes)) for t in tables]
    pack_allow = tuple(a for ids, a in allows if a and not ids)
    rules: list[SecretRule] = []
    seen: set[str] = set()
    for raw in data.get("rules") or []:
        rule = _gitleaks_rule(raw, source, text, notes)
        if rule is None:
            continue
        targeted = tuple(a for ids, a in allows if a and ids and rule.id in ids)
        rule = replace(rule, allowlists=rule.allowlists + targeted)
        if rule.id in seen:
            raise RulePackError(source, "duplicate rule id", rule.id, rule.line)
        seen.add(rule.id)
        rules.append(rule)
    if not rules:
        raise RulePackError(source, "no usable [[rules]] (a rule needs a 'regex')")
    return RulePack(source, tuple(rules), pack_allow, tuple(notes))


def _gitleaks_rule(raw: Any, source: str, text: str, notes: list[str]) -> SecretRule | None:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise RulePackError(source, "every [[rules]] entry needs an 'id'")
    rid = str(raw["id"])
    line = _toml_line(text, rid)
    for key in sorted(set(raw) - GITLEAKS_RULE):
        notes.append(f"rule '{rid}': unknown key '{key}' ignored")
    if raw.get("skipReport"):
        notes.append(f"rule '{rid}' skipped: skipReport (it only serves composite rules)")
        return None
    if not raw.get("regex"):
        if raw.get("path"):
            notes.append(f"rule '{rid}' skipped: path-only rules need a file name")
            return None
        raise RulePackError(source, "rule has neither 'regex' nor 'path'", rid, line)
    if raw.get("path"):
        notes.append(f"rule '{rid}': 'path' condition ignored (prompts have no file name)")
    regex = compile_regex(raw["regex"], source, rid, line)
    group = raw.get("secretGroup") or None
    tables = _tables(raw.get("allowlist"), raw.get("allowlists"))
    allows = tuple(a for t in tables if (a := _gitleaks_allow(t, source, rid, line, notes)))
    keywords = _words(raw.get("keywords"), "keywords", source, rid, line)
    return SecretRule(
        id=rid,
        description=str(raw.get("description") or rid),
        type=rid.replace("-", "_").lower(),
        regex=regex,
        secret_group=_secret_group(group, regex, source, rid, line),
        severity="high",
        keywords=tuple(k.lower() for k in keywords),
        entropy=_number(raw.get("entropy"), "entropy", 0.0, 8.0, source, rid, line),
        allowlists=allows,
        source=source,
        line=line,
    )


def _tables(single: Any, many: Any) -> list[dict[str, Any]]:
    """gitleaks has `[allowlist]` (one table) and the newer `[[allowlists]]` (a list)."""
    tables = [single] if isinstance(single, dict) else []
    return tables + [t for t in many or [] if isinstance(t, dict)]


def _gitleaks_allow(
    raw: dict[str, Any], source: str, rid: str | None, line: int | None, notes: list[str]
) -> Allowlist | None:
    """One gitleaks allowlist; paths and commits cannot apply to a prompt and are noted."""
    whose = f"rule '{rid}'" if rid else "global"
    target = str(raw.get("regexTarget") or "secret").lower()
    if target not in TARGETS:
        problem = f"allowlist regexTarget '{target}' not in {'|'.join(TARGETS)}"
        raise RulePackError(source, problem, rid, line)
    require_all = str(raw.get("condition") or "OR").upper() == "AND"
    unusable = [k for k in ("paths", "commits") if raw.get(k)]
    if unusable:
        notes.append(f"{whose} allowlist: {', '.join(unusable)} ignored (prompts have none)")
        if require_all:
            notes.append(f"{whose} allowlist dropped: condition AND needs {unusable[0]}")
            return None
    allow = Allowlist(
        _regexes(raw.get("regexes"), source, rid, line),
        _words(raw.get("stopwords"), "stopwords", source, rid, line),
        target,
        require_all,
    )
    return allow if allow.regexes or allow.stopwords else None


def _toml_line(text: str, rule_id: str) -> int | None:
    """The line of `id = "<rule_id>"` (tomllib keeps no positions)."""
    pattern = re.compile(r"^\s*id\s*=\s*['\"]" + re.escape(rule_id) + r"['\"]", re.M)
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else None
