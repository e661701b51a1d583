"""The examples stay true to the code: the PAC file covers every AI service host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlpproxy.identity import load_directory
from dlpproxy.policy import PolicyError, load_policy
from dlpproxy.providers import default_services
from dlpproxy.types import Finding

ROOT = Path(__file__).resolve().parent.parent


def test_pac_file_lists_every_ai_service_host() -> None:
    pac = (ROOT / "examples" / "proxy.pac").read_text(encoding="utf-8")
    listed = set(re.findall(r'^\s+"([^"]+)",?$', pac, re.MULTILINE))
    wanted = {h.partition("/")[0] for s in default_services() for h in s.hosts}
    assert listed == wanted


def test_example_users_file_loads() -> None:
    directory = load_directory(ROOT / "examples" / "users.yaml")
    assert directory.identify("", "", "10.20.3.4") == ("office-seoul", ())
    assert directory.identify("bob", "", "10.20.3.4") == ("bob", ("engineering", "security-team"))


def test_shipped_policy_loads() -> None:
    assert load_policy(ROOT / "rules" / "policy.yaml").fail_closed


def test_sovereign_example_policy_loads_and_reroutes_code_to_the_coder_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "token-from-the-environment")
    policy = load_policy(ROOT / "examples" / "policy-sovereign.yaml")
    assert set(policy.local_models) == {"coder", "general"}
    assert policy.local_models["coder"].base_url == "http://gpu01.corp.example:8000/v1"
    code = Finding(0, 10, "source_code", "source_code", "classifier", 0.95)
    decision = policy.decide((code,))
    assert (decision.action, decision.model) == ("reroute", "coder")
    assert policy.reroute.route(decision.model) == ("coder",)
    assert policy.reroute.route("") == ("general", "coder")
    assert policy.local_models["coder"].api_key == "token-from-the-environment"
    monkeypatch.delenv("VLLM_API_KEY")
    with pytest.raises(PolicyError, match="VLLM_API_KEY"):
        load_policy(ROOT / "examples" / "policy-sovereign.yaml")
