"""The policy: what to do about what the engine found, for whom and where.

Rules are data (`rules/policy.yaml`), validated on load with errors naming the file and line.
A decision takes the findings of a scan, the user's groups and the destination host, matches each
finding against the rules (group and destination overrides first, then the global rules; the
first rule that matches decides for that finding) and keeps the strongest action. A rule pack or
rule in `monitor` mode logs what it would have done and lets the prompt through.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlpproxy.detect.yamlfile import LINE, check_fields, load_yaml, require
from dlpproxy.errors import DlpError, RulePackError
from dlpproxy.localmodel.config import LocalModelConfig, parse_local_models
from dlpproxy.types import SEVERITIES, SEVERITY_RANK, Finding
from dlpproxy.watched import WatchedFile

ACTIONS = ("allow", "monitor", "redact", "reroute", "block")
STRENGTH = {name: rank for rank, name in enumerate(ACTIONS)}
MODES = ("enforce", "monitor")
TOP_FIELDS = {
    "version", "mode", "fail_closed", "max_body_bytes", "unsanctioned", "messages", "packs",
    "thresholds", "rules", "groups", "destinations", "evidence_capture", "local_models", "reroute",
}  # fmt: skip
RULE_FIELDS = {
    "id", "category", "type", "detector", "min_severity", "min_score", "action", "mode", "model",
}  # fmt: skip
REROUTE_FIELDS = {"model", "fallback", "banner"}
DEFAULT_BANNER = "[Answered by the company's own model: this prompt held sensitive data.]"
DEFAULT_MESSAGE = (
    "dlpproxy blocked this prompt: it contains {categories}. "
    "Incident {incident}. Ask your security team if you think this is wrong."
)


class PolicyError(DlpError):
    """The policy file is invalid; names the file, line and the problem."""

    def __init__(self, source: str, problem: str, line: int | None = None):
        self.source, self.problem, self.line = source, problem, line
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class PolicyRule:
    id: str
    action: str
    category: str = "*"
    types: tuple[str, ...] = ("*",)
    detector: str = "*"
    min_severity: str = "low"
    min_score: float = 0.0
    mode: str = "enforce"
    model: str = ""  # reroute: the local model that answers (empty: the policy's default)

    def matches(self, f: Finding) -> bool:
        return (
            fnmatch.fnmatchcase(f.category, self.category)
            and any(fnmatch.fnmatchcase(f.type, t) for t in self.types)
            and fnmatch.fnmatchcase(f.detector, self.detector)
            and SEVERITY_RANK.get(f.severity, 1) >= SEVERITY_RANK[self.min_severity]
            and f.score >= self.min_score
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one prompt and why; `would` is the action a monitor rule held back."""

    action: str
    rule: str = ""
    findings: tuple[Finding, ...] = ()
    message: str = ""
    would: str = ""
    reasons: tuple[str, ...] = ()
    model: str = ""  # reroute: the local model the deciding rule names

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({f.category for f in self.findings}))


@dataclass(frozen=True, slots=True)
class RerouteSettings:
    """Where rerouted prompts go: the default local model, the ones tried next, the banner."""

    model: str = ""
    fallback: tuple[str, ...] = ()
    banner: str = DEFAULT_BANNER

    def route(self, model: str = "") -> tuple[str, ...]:
        """The local models to try in order for a decision naming `model` (or none)."""
        first = model or self.model
        return tuple(dict.fromkeys(n for n in (first, *self.fallback) if n))


@dataclass(frozen=True, slots=True)
class Policy:
    source: str = "<defaults>"
    mode: str = "enforce"
    fail_closed: bool = True
    max_body_bytes: int = 10 * 1024 * 1024
    unsanctioned: str = "monitor"
    evidence_capture: bool = False
    messages: dict[str, str] = field(default_factory=lambda: {"block": DEFAULT_MESSAGE})
    packs: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    rules: tuple[PolicyRule, ...] = ()
    groups: dict[str, tuple[PolicyRule, ...]] = field(default_factory=dict)
    destinations: tuple[tuple[str, tuple[PolicyRule, ...]], ...] = ()
    local_models: dict[str, LocalModelConfig] = field(default_factory=dict)
    reroute: RerouteSettings = field(default_factory=RerouteSettings)

    def decide(
        self, findings: tuple[Finding, ...], groups: tuple[str, ...] = (), host: str = ""
    ) -> Decision:
        """The strongest action any finding calls for; monitor modes turn it into `monitor`."""
        chain = self._chain(groups, host)
        best: tuple[int, PolicyRule] | None = None
        held: tuple[int, PolicyRule] | None = None
        acted: list[Finding] = []
        reasons: list[str] = []
        for f in findings:
            if not self._passes_threshold(f):
                continue
            rule = next((r for r in chain if r.matches(f)), None)
            if rule is None or rule.action == "allow":
                continue
            enforced = self.mode == "enforce" and rule.mode == "enforce"
            enforced = enforced and self.packs.get(f.detector, "enforce") == "enforce"
            rank = STRENGTH[rule.action]
            reasons.append(f"{f.category}/{f.type} -> {rule.action} ({rule.id})")
            acted.append(f)
            if enforced and (best is None or rank > best[0]):
                best = (rank, rule)
            if not enforced and (held is None or rank > held[0]):
                held = (rank, rule)
        return self._decision(best, held, tuple(acted), tuple(reasons))

    def _decision(
        self,
        best: tuple[int, PolicyRule] | None,
        held: tuple[int, PolicyRule] | None,
        acted: tuple[Finding, ...],
        reasons: tuple[str, ...],
    ) -> Decision:
        would = held[1].action if held and (best is None or held[0] > best[0]) else ""
        if best is None:
            action = "monitor" if acted else "allow"
            return Decision(action, held[1].id if held else "", acted, "", would, reasons)
        rule = best[1]
        message = self.messages.get(rule.action, self.messages.get("block", DEFAULT_MESSAGE))
        return Decision(rule.action, rule.id, acted, message, would, reasons, rule.model)

    def _chain(self, groups: tuple[str, ...], host: str) -> list[PolicyRule]:
        chain: list[PolicyRule] = []
        for pattern, rules in self.destinations:
            if host and fnmatch.fnmatchcase(host.lower(), pattern):
                chain.extend(rules)
        for group in groups:
            chain.extend(self.groups.get(group, ()))
        chain.extend(self.rules)
        return chain

    def _passes_threshold(self, f: Finding) -> bool:
        limit = self.thresholds.get(f.detector, {}).get(f.category)
        return limit is None or f.score >= limit


def load_policy(path: Path) -> Policy:
    """Load and validate a policy file; PolicyError names the file, line and problem."""
    source = str(path)
    try:
        data = load_yaml(path)
        check_fields(data, TOP_FIELDS, source, None)
    except RulePackError as exc:
        raise PolicyError(source, exc.problem, exc.line) from None
    if data.get("version") != 1:
        raise PolicyError(source, "expected 'version: 1'", data.get(LINE))
    models = _map(data, "local_models", source)
    try:
        local_models = parse_local_models({k: _without_lines(v) for k, v in models.items()})
    except DlpError as exc:
        line = next((v.get(LINE) for v in models.values() if isinstance(v, dict)), None)
        raise PolicyError(source, str(exc), line) from None
    policy = Policy(
        source=source,
        mode=_choice(data, "mode", MODES, "enforce", source),
        fail_closed=_bool(data, "fail_closed", True, source),
        max_body_bytes=_int(data, "max_body_bytes", 10 * 1024 * 1024, source),
        unsanctioned=_choice(
            data, "unsanctioned", ("allow", "monitor", "block"), "monitor", source
        ),
        evidence_capture=_bool(data, "evidence_capture", False, source),
        messages={**{"block": DEFAULT_MESSAGE}, **_str_map(data, "messages", source)},
        packs={k: _mode(v, source, data, k) for k, v in _str_map(data, "packs", source).items()},
        thresholds=_thresholds(data, source),
        rules=_rules(data.get("rules") or [], source),
        groups={str(k): _rules(v or [], source) for k, v in _map(data, "groups", source).items()},
        destinations=tuple(
            (str(k).lower(), _rules(v or [], source))
            for k, v in _map(data, "destinations", source).items()
        ),
        local_models=local_models,
        reroute=_reroute(data, source, local_models),
    )
    _check_reroute(policy)
    return policy


def _without_lines(value: Any) -> Any:
    """A mapping from the YAML loader without its line-number keys (for plain parsers)."""
    return {k: v for k, v in value.items() if k != LINE} if isinstance(value, dict) else value


def _reroute(
    data: dict[str, Any], source: str, models: dict[str, LocalModelConfig]
) -> RerouteSettings:
    raw = _map(data, "reroute", source)
    unknown = sorted(set(raw) - REROUTE_FIELDS)
    if unknown:
        expected = ", ".join(sorted(REROUTE_FIELDS))
        raise PolicyError(source, f"reroute: unknown field '{unknown[0]}' (known: {expected})")
    fallback = raw.get("fallback") or []
    if not isinstance(fallback, list):
        raise PolicyError(source, "reroute.fallback must be a list of local model names")
    settings = RerouteSettings(
        model=str(raw.get("model") or next(iter(models), "")),
        fallback=tuple(str(n) for n in fallback),
        banner=str(raw.get("banner", DEFAULT_BANNER) or ""),
    )
    for name in (settings.model, *settings.fallback):
        if name and name not in models:
            raise PolicyError(source, f"reroute: no local model named '{name}' in local_models")
    return settings


def _check_reroute(policy: Policy) -> None:
    """Every reroute rule must have a local model to go to, and name only known ones."""
    everything = [*policy.rules, *(r for rs in policy.groups.values() for r in rs)]
    everything += [r for _, rs in policy.destinations for r in rs]
    for rule in everything:
        if rule.model and rule.model not in policy.local_models:
            raise PolicyError(
                policy.source, f"rule '{rule.id}': no local model named '{rule.model}'"
            )
        if rule.action == "reroute" and not policy.reroute.route(rule.model):
            raise PolicyError(
                policy.source,
                f"rule '{rule.id}' reroutes, but local_models is empty: add a local model",
            )


def _rules(raw: Any, source: str) -> tuple[PolicyRule, ...]:
    if not isinstance(raw, list):
        raise PolicyError(source, "rules must be a list")
    out: list[PolicyRule] = []
    for item in raw:
        if not isinstance(item, dict):
            raise PolicyError(source, "each rule must be a mapping")
        line = item.get(LINE)
        rid = str(item.get("id", ""))
        try:
            check_fields(item, RULE_FIELDS, source, None)
            require(item, "id", source, None)
            require(item, "action", source, None)
        except RulePackError as exc:
            raise PolicyError(source, f"rule '{rid}': {exc.problem}", line) from None
        action = str(item["action"])
        if action not in ACTIONS:
            expected = "|".join(ACTIONS)
            raise PolicyError(
                source, f"rule '{rid}': unknown action '{action}'; expected {expected}", line
            )
        severity = str(item.get("min_severity", "low"))
        if severity not in SEVERITIES:
            problem = f"rule '{rid}': min_severity '{severity}' not in {'|'.join(SEVERITIES)}"
            raise PolicyError(source, problem, line)
        mode = str(item.get("mode", "enforce"))
        if mode not in MODES:
            raise PolicyError(source, f"rule '{rid}': mode '{mode}' not in enforce|monitor", line)
        out.append(PolicyRule(
            rid, action, str(item.get("category", "*")), _types(item.get("type", "*")),
            str(item.get("detector", "*")), severity, float(item.get("min_score", 0.0)), mode,
            str(item.get("model", "")),
        ))  # fmt: skip
    return tuple(out)


def _types(raw: Any) -> tuple[str, ...]:
    return tuple(str(t) for t in raw) if isinstance(raw, list) else (str(raw),)


def _map(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise PolicyError(source, f"'{key}' must be a mapping", data.get(LINE))
    return {k: v for k, v in value.items() if k != LINE}


def _str_map(data: dict[str, Any], key: str, source: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _map(data, key, source).items()}


def _thresholds(data: dict[str, Any], source: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for detector, per_category in _map(data, "thresholds", source).items():
        if not isinstance(per_category, dict):
            raise PolicyError(source, f"thresholds.{detector} must map category -> score")
        try:
            out[str(detector)] = {str(c): float(s) for c, s in per_category.items() if c != LINE}
        except (TypeError, ValueError):
            raise PolicyError(source, f"thresholds.{detector}: scores must be numbers") from None
    return out


def _mode(value: str, source: str, data: dict[str, Any], pack: str) -> str:
    if value not in MODES:
        raise PolicyError(
            source, f"packs.{pack}: mode '{value}' not in enforce|monitor", data.get(LINE)
        )
    return value


def _choice(
    data: dict[str, Any], key: str, allowed: tuple[str, ...], default: str, source: str
) -> str:
    value = str(data.get(key, default))
    if value not in allowed:
        raise PolicyError(source, f"{key} '{value}' not in {'|'.join(allowed)}", data.get(LINE))
    return value


def _bool(data: dict[str, Any], key: str, default: bool, source: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise PolicyError(source, f"{key} must be true or false", data.get(LINE))
    return value


def _int(data: dict[str, Any], key: str, default: int, source: str) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PolicyError(source, f"{key} must be a positive integer", data.get(LINE))
    return value


class PolicyHolder(WatchedFile[Policy]):
    """The current policy, reloaded when its file changes; a broken edit keeps the old policy
    (`dlpproxy.watched`). The proxy and the gateway call `current()` per request."""

    kind = "policy"

    def __init__(self, path: Path, check_every: float = 1.0):
        super().__init__(path, load_policy, check_every)

    @property
    def policy(self) -> Policy:
        return self.value
