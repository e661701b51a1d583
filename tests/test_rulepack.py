"""Loading secret rule packs: our YAML format, gitleaks TOML, and the errors a bad pack raises."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dlpproxy.detect.rulepack import load_pack
from dlpproxy.detect.secrets import SecretsDetector
from dlpproxy.errors import RulePackError

PACKS = Path(__file__).resolve().parent / "fixtures" / "rulepacks"

GOOD_RULE = """\
version: 1
rules:
  - id: demo-token
    description: demo token
    type: demo_token
    regex: '\\b(dmo_[a-z0-9]{20})\\b'
    keywords: [dmo_]
    severity: high
"""


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path: Path) -> RulePackError:
    with pytest.raises(RulePackError) as caught:
        load_pack(path)
    return caught.value


def test_yaml_pack_loads_every_rule_in_file_order():
    pack = load_pack(PACKS / "basic.yaml")
    assert [r.id for r in pack.rules] == [
        "aws-access-key-id", "github-pat", "slack-bot-token", "stripe-secret-key",
        "private-key-block", "jwt", "generic-password", "generic-api-key",
    ]  # fmt: skip


def test_yaml_rule_keeps_its_fields_and_line():
    rule = load_pack(PACKS / "basic.yaml").rules[-1]
    assert (rule.type, rule.severity, rule.score, rule.entropy) == (
        "generic_secret", "medium", 0.7, 3.5,
    )  # fmt: skip
    assert rule.keywords == ("api_key", "apikey", "api-key", "secret", "token")
    assert rule.line == 80


def test_yaml_rule_defaults_score_one_category_secret_and_first_group():
    rule = load_pack(PACKS / "basic.yaml").rules[0]
    assert (rule.score, rule.category, rule.secret_group) == (1.0, "secret", 1)


def test_yaml_rule_without_groups_reports_whole_match():
    rule = next(r for r in load_pack(PACKS / "basic.yaml").rules if r.id == "private-key-block")
    assert rule.secret_group == 0


def test_yaml_pack_global_stopwords_and_allowlist_become_pack_allowlist():
    (allow,) = load_pack(PACKS / "basic.yaml").allowlists
    assert allow.stopwords == ("example", "sample", "dummy", "changeme")
    assert len(allow.regexes) == 1


def test_unknown_rule_field_names_file_line_and_rule(tmp_path):
    path = write(tmp_path, GOOD_RULE + "    regexx: 'typo'\n")
    err = load_error(path)
    assert (err.source, err.line, err.rule) == (str(path), 3, "demo-token")
    assert str(err).startswith(f"{path}:3: rule 'demo-token': unknown field 'regexx'")


def test_unknown_top_level_field_is_an_error(tmp_path):
    path = write(tmp_path, "name: mine\n" + GOOD_RULE)
    assert str(load_error(path)).startswith(f"{path}:1: unknown field 'name'")


def test_regex_re2_cannot_compile_names_rule_and_line(tmp_path):
    path = write(tmp_path, GOOD_RULE.replace("\\b(dmo_", "\\b((dmo_"))
    err = load_error(path)
    assert (err.line, err.rule) == (3, "demo-token")
    assert "regex does not compile with RE2" in err.problem


def test_lookahead_is_rejected_because_re2_has_none(tmp_path):
    path = write(tmp_path, GOOD_RULE.replace("\\b(dmo_", "(?=dmo)\\b(dmo_"))
    assert load_error(path).rule == "demo-token"


def test_duplicate_rule_id_names_second_line_and_first(tmp_path):
    second = GOOD_RULE.split("rules:\n")[1]
    path = write(tmp_path, GOOD_RULE + second)
    err = load_error(path)
    assert (err.line, err.rule) == (9, "demo-token")
    assert err.problem == "duplicate rule id (first defined at line 3)"


def test_bad_severity_lists_the_allowed_ones(tmp_path):
    path = write(tmp_path, GOOD_RULE.replace("severity: high", "severity: urgent"))
    err = load_error(path)
    assert (
        str(err)
        == f"{path}:3: rule 'demo-token': severity 'urgent' not in low|medium|high|critical"
    )


def test_missing_required_field_is_named(tmp_path):
    path = write(tmp_path, GOOD_RULE.replace("    type: demo_token\n", ""))
    assert str(load_error(path)) == f"{path}:3: rule 'demo-token': missing required field 'type'"


def test_secret_group_beyond_group_count_is_an_error(tmp_path):
    path = write(tmp_path, GOOD_RULE + "    secret_group: 2\n")
    err = load_error(path)
    assert err.problem == "secret group 2 but the regex has only 1 group(s)"


def test_uppercase_keyword_is_an_error(tmp_path):
    path = write(tmp_path, GOOD_RULE.replace("[dmo_]", "[DMO_]"))
    assert load_error(path).problem == "keywords must be lowercase: ['DMO_']"


def test_score_above_one_is_an_error(tmp_path):
    path = write(tmp_path, GOOD_RULE + "    score: 5\n")
    assert load_error(path).problem == "score must be a number in [0.01, 1.0]"


def test_missing_version_is_an_error(tmp_path):
    path = write(tmp_path, GOOD_RULE.replace("version: 1\n", ""))
    assert load_error(path).problem == "expected 'version: 1'"


def test_yaml_syntax_error_reports_its_line(tmp_path):
    path = write(tmp_path, GOOD_RULE + "    keywords: [unclosed\n")
    err = load_error(path)
    assert err.problem.startswith("invalid YAML")
    assert err.line == 10


def test_unknown_extension_is_an_error(tmp_path):
    path = write(tmp_path, GOOD_RULE, name="pack.json")
    assert "unknown pack format" in load_error(path).problem


def test_one_bad_pack_stops_the_detector_from_being_built(tmp_path):
    bad = write(tmp_path, GOOD_RULE.replace("severity: high", "severity: urgent"))
    with pytest.raises(RulePackError) as caught:
        SecretsDetector.from_paths([PACKS / "basic.yaml", bad])
    assert caught.value.source == str(bad)


def test_gitleaks_toml_rules_get_type_from_id_and_high_severity():
    pack = load_pack(PACKS / "gitleaks.toml")
    assert [(r.id, r.type, r.severity, r.category) for r in pack.rules][:2] == [
        ("gitlab-pat", "gitlab_pat", "high", "secret"),
        ("npm-access-token", "npm_access_token", "high", "secret"),
    ]


def test_gitleaks_path_only_rule_is_skipped_with_a_note():
    pack = load_pack(PACKS / "gitleaks.toml")
    assert "pkcs12-file" not in [r.id for r in pack.rules]
    assert "rule 'pkcs12-file' skipped: path-only rules need a file name" in pack.notes


def test_gitleaks_skip_report_rule_is_skipped_with_a_note():
    pack = load_pack(PACKS / "gitleaks.toml")
    assert "internal-key-fragment" not in [r.id for r in pack.rules]
    assert any(n.startswith("rule 'internal-key-fragment' skipped: skipReport") for n in pack.notes)


def test_gitleaks_allowlist_with_target_rules_joins_only_those_rules():
    pack = load_pack(PACKS / "gitleaks.toml")
    targets = {r.id: [a.target for a in r.allowlists] for r in pack.rules}
    assert (targets["gitlab-pat"], targets["npm-access-token"]) == (["line", "line"], [])
    assert [a.target for a in pack.allowlists] == ["match"]


def test_gitleaks_keywords_are_lowercased():
    rule = next(r for r in load_pack(PACKS / "gitleaks.toml").rules if r.id.startswith("internal"))
    assert rule.keywords == ("svc_token", "service_token")


def test_gitleaks_secret_group_and_entropy_are_kept():
    rule = next(r for r in load_pack(PACKS / "gitleaks.toml").rules if r.id.startswith("internal"))
    assert (rule.secret_group, rule.entropy) == (1, 3.5)


def test_gitleaks_and_allowlist_that_needs_paths_is_dropped():
    pack = load_pack(PACKS / "gitleaks.toml")
    rule = next(r for r in pack.rules if r.id == "internal-service-token")
    assert [a.target for a in rule.allowlists] == ["line"]
    assert (
        "rule 'internal-service-token' allowlist dropped: condition AND needs paths" in pack.notes
    )


def test_gitleaks_old_and_new_allowlist_forms_both_load():
    pack = load_pack(PACKS / "gitleaks.toml")
    legacy = next(r for r in pack.rules if r.id == "legacy-license-key")
    assert [a.stopwords for a in legacy.allowlists] == [("test",)]
    assert [(a.target, a.stopwords) for a in pack.allowlists] == [("match", ("dummy",))]


def test_gitleaks_lookbehind_names_rule_and_line(tmp_path):
    path = write(
        tmp_path,
        """\
        title = "x"

        [[rules]]
        id = "old-style"
        regex = '''(?<!x)key_[a-z0-9]{10}'''
        """,
        name="gitleaks.toml",
    )
    err = load_error(path)
    assert (err.rule, err.line) == ("old-style", 4)


def test_gitleaks_invalid_toml_reports_line(tmp_path):
    path = write(tmp_path, '[[rules]]\nid = "a"\nregex = \n', name="broken.toml")
    err = load_error(path)
    assert err.line == 3
    assert err.problem.startswith("invalid TOML")
