"""Every rule's own examples: positives must be found by that rule, negatives must not.

Runs over the shipped pack `rules/secrets.yaml` (test ids = rule ids) and over the test fixture
pack. Each rule is checked alone (with its pack's allowlists), so a rule that would lose an
identical span to a more specific rule is still held to its own examples; the regex prefilter is
on for every size, so a positive it wrongly ruled out would fail here.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from dlpproxy.detect.rulepack import RulePack, SecretRule, load_pack
from dlpproxy.detect.secrets import SecretsDetector
from dlpproxy.errors import RulePackError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "rules" / "secrets.yaml"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "rulepacks" / "basic.yaml"


def _load(path: Path) -> tuple[RulePack | None, str]:
    """The pack, or why it could not be loaded (reported by test_shipped_pack_loads)."""
    if not path.is_file():
        return None, f"{path} not present"
    try:
        return load_pack(path), ""
    except RulePackError as exc:
        return None, str(exc)


SHIPPED_PACK, SHIPPED_PROBLEM = _load(SHIPPED)


def _cases(pack: RulePack | None, kind: str, prefix: str = "") -> list:
    if pack is None:
        return []
    cases = []
    for rule in pack.rules:
        examples = rule.positive if kind == "positive" else rule.negative
        for n, example in enumerate(examples):
            cases.append(pytest.param(pack, rule, example, id=f"{prefix}{rule.id}-{n}"))
    return cases


@functools.cache
def _alone(pack: RulePack, rule: SecretRule) -> SecretsDetector:
    return SecretsDetector([RulePack(pack.source, (rule,), pack.allowlists)], prefilter_from=0)


def _rule_ids_found(pack: RulePack, rule: SecretRule, text: str) -> list[str]:
    return [f.rule for f in _alone(pack, rule).detect(text)]


@pytest.mark.skipif(not SHIPPED.is_file(), reason="rules/secrets.yaml not present")
def test_shipped_pack_loads():
    assert SHIPPED_PROBLEM == ""


@pytest.mark.skipif(SHIPPED_PACK is None, reason="rules/secrets.yaml absent or invalid")
def test_every_shipped_rule_has_positive_and_negative_examples():
    assert SHIPPED_PACK is not None
    missing = [r.id for r in SHIPPED_PACK.rules if not r.positive or not r.negative]
    assert missing == []


@pytest.mark.parametrize(("pack", "rule", "example"), _cases(SHIPPED_PACK, "positive"))
def test_shipped_rule_finds_its_positive_example(pack, rule, example):
    assert rule.id in _rule_ids_found(pack, rule, example)


@pytest.mark.parametrize(("pack", "rule", "example"), _cases(SHIPPED_PACK, "negative"))
def test_shipped_rule_ignores_its_negative_example(pack, rule, example):
    assert rule.id not in _rule_ids_found(pack, rule, example)


FIXTURE_PACK = load_pack(FIXTURE)


@pytest.mark.parametrize(("pack", "rule", "example"), _cases(FIXTURE_PACK, "positive"))
def test_fixture_rule_finds_its_positive_example(pack, rule, example):
    assert rule.id in _rule_ids_found(pack, rule, example)


@pytest.mark.parametrize(("pack", "rule", "example"), _cases(FIXTURE_PACK, "negative"))
def test_fixture_rule_ignores_its_negative_example(pack, rule, example):
    assert rule.id not in _rule_ids_found(pack, rule, example)
