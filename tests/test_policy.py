"""The policy: first matching rule per finding, strongest action wins, monitor modes, reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlpproxy.policy import PolicyError, PolicyHolder, load_policy
from dlpproxy.types import Finding

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = load_policy(ROOT / "rules" / "policy.yaml")


def finding(category: str, type_: str, detector: str = "secrets", severity: str = "high",
            score: float = 1.0) -> Finding:  # fmt: skip
    return Finding(0, 10, type_, category, detector, score, severity)


AWS = finding("secret", "aws_access_key", severity="critical")
EMAIL = finding("pii", "email", "pii", "medium")
RRN = finding("pii", "kr_rrn", "pii")
MARK = finding("confidential_marking", "classification_mark", "keywords")
WORD = finding("confidential_marking", "confidentiality_word", "keywords", "low")
CODE = finding("source_code", "source_code", "classifier", "medium", 0.95)


def test_no_findings_is_allow() -> None:
    assert SHIPPED.decide(()).action == "allow"


def test_secret_is_blocked_by_the_shipped_policy() -> None:
    decision = SHIPPED.decide((AWS,))
    assert (decision.action, decision.rule) == ("block", "block-secrets")
    assert "{incident}" in decision.message


def test_email_is_redacted_and_national_id_blocked() -> None:
    assert SHIPPED.decide((EMAIL,)).action == "redact"
    assert SHIPPED.decide((EMAIL, RRN)).action == "block"


def test_strongest_action_wins_and_all_acted_findings_are_kept() -> None:
    decision = SHIPPED.decide((EMAIL, MARK))
    assert decision.action == "block"
    assert decision.findings == (EMAIL, MARK)
    assert decision.categories == ("confidential_marking", "pii")


def test_low_severity_marking_is_only_monitored() -> None:
    assert SHIPPED.decide((WORD,)).action == "monitor"


def test_classifier_pack_in_monitor_mode_records_what_it_would_do() -> None:
    decision = SHIPPED.decide((CODE,))
    assert decision.action == "monitor"


def test_classifier_below_threshold_is_ignored() -> None:
    weak = finding("source_code", "source_code", "classifier", "medium", 0.5)
    assert SHIPPED.decide((weak,)).action == "allow"


def test_group_override_comes_before_global_rules() -> None:
    decision = SHIPPED.decide((AWS,), groups=("security-team",))
    assert (decision.action, decision.rule) == ("monitor", "security-monitor-all")


def test_destination_override_allows_pii_to_the_company_tenant() -> None:
    assert SHIPPED.decide((RRN,), host="acme.openai.azure.com").action == "allow"
    assert SHIPPED.decide((AWS,), host="acme.openai.azure.com").action == "block"
    assert SHIPPED.decide((RRN,), host="api.openai.com").action == "block"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_global_monitor_mode_holds_back_a_block(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nmode: monitor\nrules:\n  - {id: s, category: secret, action: block}\n",
    )
    decision = load_policy(path).decide((AWS,))
    assert (decision.action, decision.would, decision.rule) == ("monitor", "block", "s")


def test_rule_in_monitor_mode_holds_back_only_itself(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nrules:\n"
                 "  - {id: s, category: secret, action: block, mode: monitor}\n"
                 "  - {id: p, category: pii, action: redact}\n")  # fmt: skip
    decision = load_policy(path).decide((AWS, EMAIL))
    assert (decision.action, decision.would) == ("redact", "block")


def test_unknown_action_names_file_line_and_choices(tmp_path: Path) -> None:
    path = write(
        tmp_path, "version: 1\nrules:\n  - id: x\n    category: secret\n    action: mask2\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value) == (
        f"{path}:3: rule 'x': unknown action 'mask2'; expected allow|monitor|redact|reroute|block"
    )


def test_unknown_top_level_field_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nfail_close: true\n")
    with pytest.raises(PolicyError, match="unknown field 'fail_close'"):
        load_policy(path)


def test_bad_body_limit_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="max_body_bytes must be a positive integer"):
        load_policy(write(tmp_path, "version: 1\nmax_body_bytes: -5\n"))


def test_hot_reload_picks_up_a_valid_edit(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nrules:\n  - {id: s, category: secret, action: block}\n")
    holder = PolicyHolder(path, check_every=0)
    path.write_text("version: 1\nrules:\n  - {id: s, category: secret, action: redact}\n")
    os.utime(path, ns=(1, 2_000_000_000))
    assert holder.current().decide((AWS,)).action == "redact"


def test_broken_edit_keeps_the_old_policy_and_says_why(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nrules:\n  - {id: s, category: secret, action: block}\n")
    holder = PolicyHolder(path, check_every=0)
    path.write_text("version: 1\nrules:\n  - {id: s, category: secret, action: explode}\n")
    os.utime(path, ns=(1, 2_000_000_000))
    assert holder.current().decide((AWS,)).action == "block"
    assert "kept the previous policy" in holder.error
    assert "unknown action 'explode'" in holder.error


REROUTE_POLICY = """version: 1
local_models:
  company:
    base_url: http://127.0.0.1:8000/v1
    model: qwen-coder
  spare:
    base_url: http://127.0.0.1:8001/v1
    model: llama
reroute:
  fallback: [spare]
  banner: "[company model]"
rules:
  - id: code-to-company
    category: source_code
    action: reroute
    model: spare
  - id: secrets-to-company
    category: secret
    action: reroute
"""


def test_reroute_decision_names_the_rules_model_and_the_route_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(REROUTE_POLICY)
    policy = load_policy(path)
    assert set(policy.local_models) == {"company", "spare"}
    assert policy.local_models["company"].model == "qwen-coder"
    code = policy.decide((CODE,))
    assert (code.action, code.model) == ("reroute", "spare")
    assert policy.reroute.route(code.model) == ("spare",)
    secret = policy.decide((AWS,))
    assert (secret.action, secret.model) == ("reroute", "")
    assert policy.reroute.route(secret.model) == ("company", "spare")  # default is the first
    assert policy.reroute.banner == "[company model]"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            ("    model: spare\n", "    model: nowhere\n"),
            "rule 'code-to-company': no local model named 'nowhere'",
        ),
        (("  fallback: [spare]", "  fallback: [gone]"), "reroute: no local model named 'gone'"),
        (("  banner:", "  colour:"), "reroute: unknown field 'colour'"),
        (("    base_url: http://127.0.0.1:8001/v1\n", ""), "local_models"),
    ],
)
def test_reroute_policy_errors_are_clear(
    tmp_path: Path, edit: tuple[str, str], problem: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(REROUTE_POLICY.replace(*edit))
    with pytest.raises(PolicyError, match=problem):
        load_policy(path)


def test_a_reroute_rule_without_local_models_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nrules:\n  - id: r\n    category: secret\n    action: reroute\n")
    with pytest.raises(PolicyError, match="rule 'r' reroutes, but local_models is empty"):
        load_policy(path)
