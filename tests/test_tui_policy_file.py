"""Editing the policy file from the console: one value, comments kept, validated, atomic, and
picked up by the proxy's own hot reload (PolicyHolder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlpproxy.policy import PolicyHolder, load_policy
from dlpproxy.tui.policy_file import (
    PolicyEditError,
    PolicyFile,
    Setting,
    check_threshold,
    next_value,
)
from tests import tui_store

policy = tui_store.policy


def setting(pf: PolicyFile, dotted: str) -> Setting:
    return next(s for s in pf.settings if s.dotted == dotted)


def test_settings_list_packs_thresholds_and_rules(policy: Path) -> None:
    pf = PolicyFile(policy)
    assert setting(pf, "packs.classifier").value == "monitor"
    assert setting(pf, "thresholds.classifier.source_code").value == "0.8"
    assert setting(pf, "rules.0.action").name == "block-secrets (secret)"
    assert setting(pf, "rules.0.mode").value == "enforce"  # not written: the default
    assert setting(pf, "destinations.*.openai.azure.com.1.action").value == "allow"


def test_toggling_a_pack_changes_that_line_only_and_keeps_comments(policy: Path) -> None:
    before = policy.read_text().splitlines()
    pf = PolicyFile(policy)
    pf.set(("packs", "secrets"), next_value(setting(pf, "packs.secrets")))
    after = policy.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("  secrets: enforce", "  secrets: monitor")]
    assert load_policy(policy).packs["secrets"] == "monitor"


def test_rule_mode_missing_from_the_file_is_inserted_under_the_rule(policy: Path) -> None:
    pf = PolicyFile(policy)
    pf.set(("rules", 1, "mode"), "monitor")
    rules = load_policy(policy).rules
    assert rules[1].id == "block-national-ids" and rules[1].mode == "monitor"
    assert [r.mode for r in rules if r.id != "block-national-ids"] == ["enforce"] * 7
    assert "# dlpproxy policy" in policy.read_text()


def test_threshold_edit_and_next_action(policy: Path) -> None:
    pf = PolicyFile(policy)
    pf.set(("thresholds", "classifier", "meeting_notes"), check_threshold("0.55"))
    pf.set(("rules", 4, "action"), next_value(setting(pf, "rules.4.action")))
    loaded = load_policy(policy)
    assert loaded.thresholds["classifier"]["meeting_notes"] == 0.55
    assert loaded.rules[4].action == "redact"  # monitor -> redact in ACTIONS order


@pytest.mark.parametrize("text", ["high", "1.5", "-0.1"])
def test_threshold_outside_0_1_is_refused(text: str) -> None:
    with pytest.raises(PolicyEditError, match=r"0\.\.1"):
        check_threshold(text)


def test_an_edit_that_fails_validation_writes_nothing(policy: Path) -> None:
    before = policy.read_bytes()
    pf = PolicyFile(policy)
    with pytest.raises(PolicyEditError, match=r"policy.yaml:\d+: rule 'block-secrets': unknown"):
        pf.set(("rules", 0, "action"), "mask2")
    assert policy.read_bytes() == before
    assert [p.name for p in policy.parent.iterdir()] == ["policy.yaml"]  # no temp file left


def test_read_only_policy_is_refused_clearly(policy: Path) -> None:
    policy.chmod(0o444)
    before = policy.read_bytes()
    pf = PolicyFile(policy)
    assert not pf.writable
    with pytest.raises(PolicyEditError, match="no write permission; nothing was written"):
        pf.set(("packs", "pii"), "monitor")
    assert policy.read_bytes() == before


def test_read_only_folder_is_refused_clearly(policy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # os.access is the only part replaced: this machine's tests run as root, which may write
    # anywhere, so the denial is simulated at the permission check itself.
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == policy else real(p, mode))
    before = policy.read_bytes()
    with pytest.raises(PolicyEditError, match="no write permission"):
        PolicyFile(policy).set(("packs", "pii"), "monitor")
    assert policy.read_bytes() == before


def test_a_file_changed_on_disk_meanwhile_is_not_overwritten(policy: Path) -> None:
    pf = PolicyFile(policy)
    policy.write_text(policy.read_text() + "\n# edited by hand\n")
    with pytest.raises(PolicyEditError, match="changed on disk"):
        pf.set(("packs", "pii"), "monitor")
    assert policy.read_text().endswith("# edited by hand\n")


def test_broken_policy_shows_the_loader_error_and_offers_no_edit(policy: Path) -> None:
    policy.write_text(policy.read_text().replace("action: redact", "action: mask2"))
    pf = PolicyFile(policy)
    assert "unknown action 'mask2'" in pf.error and pf.settings == []
    with pytest.raises(PolicyEditError, match="mask2"):
        pf.set(("packs", "pii"), "monitor")


def test_running_proxy_policy_holder_picks_up_the_saved_file(policy: Path) -> None:
    holder = PolicyHolder(policy, check_every=0.0)
    assert holder.current().packs["secrets"] == "enforce"
    PolicyFile(policy).set(("packs", "secrets"), "monitor")
    assert holder.current().packs["secrets"] == "monitor"
    assert holder.error == ""


def test_missing_policy_file_is_reported_not_raised(tmp_path: Path) -> None:
    pf = PolicyFile(tmp_path / "gone.yaml")
    assert "gone.yaml: cannot read" in pf.error and pf.settings == []
