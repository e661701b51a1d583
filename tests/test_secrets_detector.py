"""The secrets detector: exact spans, the keyword pre-filter, entropy, allowlists, big inputs."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dlpproxy.detect import secrets
from dlpproxy.detect.rulepack import load_pack
from dlpproxy.detect.secrets import SecretsDetector, build, shannon_entropy, widen_repeats
from dlpproxy.errors import RulePackError
from dlpproxy.settings import Settings
from dlpproxy.types import Finding

PACKS = Path(__file__).resolve().parent / "fixtures" / "rulepacks"
AWS = "AKIAZ7QRST2VWX3YB4CD"
GITHUB = "ghp_R7kLm2QwX9vTz4NbH8sJd3FyC6pGa1UeK5oW"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc9Xk2"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZXZpbiJ9.Qx3v9kLmP2sT8wYbN4rJ6hF1dZ0cA7eU5gW"


@pytest.fixture(scope="module")
def detector() -> SecretsDetector:
    return SecretsDetector.from_paths([PACKS / "basic.yaml"])


@pytest.fixture(scope="module")
def prefiltered() -> SecretsDetector:
    """The basic pack with the regex prefilter on for texts of any size."""
    return SecretsDetector([load_pack(PACKS / "basic.yaml")], prefilter_from=0)


@pytest.fixture(scope="module")
def placeholders() -> SecretsDetector:
    return SecretsDetector.from_paths([PACKS / "placeholders.yaml"])


def spans(found: list[Finding], text: str) -> list[tuple[str, str]]:
    return [(f.rule, text[f.start : f.end]) for f in found]


def test_aws_key_finding_spans_exactly_the_key(detector):
    text = f"aws_access_key_id = {AWS}\n"
    (found,) = detector.detect(text)
    assert (found.start, found.end) == (20, 40)


def test_finding_carries_the_rules_type_severity_score_and_id(detector):
    (found,) = detector.detect(f"key {AWS}")
    assert found == Finding(4, 24, "aws_access_key", "secret", "secrets", 1.0, "critical",
                            "aws-access-key-id")  # fmt: skip


def test_aws_key_span_is_exact_after_korean_text(detector):
    text = f"운영 서버 접속 키는 {AWS} 입니다. 외부에 공유하지 마세요."
    (found,) = detector.detect(text)
    assert (found.start, found.end) == (text.index(AWS), text.index(AWS) + len(AWS))
    assert text[found.start : found.end] == AWS


def test_github_token_span_is_exact_after_emoji(detector):
    text = f"🔑🚀 배포 토큰: {GITHUB} 👍"
    (found,) = detector.detect(text)
    assert (found.start, found.end) == (10, 10 + len(GITHUB))


def test_every_span_is_exact_when_non_ascii_text_is_between_secrets(detector):
    text = f"一 {AWS} 二 ☃ {GITHUB} 三 😀 {STRIPE}"
    assert spans(detector.detect(text), text) == [
        ("aws-access-key-id", AWS),
        ("github-pat", GITHUB),
        ("stripe-secret-key", STRIPE),
    ]


def test_lone_surrogate_before_a_secret_keeps_offsets(detector):
    text = f"broken \ud83d json then {AWS}"
    assert spans(detector.detect(text), text) == [("aws-access-key-id", AWS)]


def test_rule_without_group_reports_the_whole_match(detector):
    text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow..."
    assert spans(detector.detect(text), text) == [
        ("private-key-block", "-----BEGIN RSA PRIVATE KEY-----")
    ]


def test_keyword_prefilter_runs_only_rules_without_keywords_on_plain_text(detector):
    assert detector.candidate_rules("Please summarise the quarterly report.") == ("jwt",)


def test_keyword_prefilter_selects_rules_whose_keyword_occurs_in_any_case(detector):
    assert detector.candidate_rules("see GHP_ and Stripe SK_LIVE_ docs") == (
        "github-pat", "stripe-secret-key", "jwt",
    )  # fmt: skip


def test_regex_prefilter_drops_keyword_rules_whose_regex_cannot_match(prefiltered):
    text = "GitHub PATs start with ghp_ and Stripe keys with sk_live_."
    assert prefiltered.candidate_rules(text) == ("github-pat", "stripe-secret-key", "jwt")
    assert prefiltered.rules_to_run(text) == ()


def test_regex_prefilter_keeps_the_rule_that_matches(prefiltered):
    assert prefiltered.rules_to_run(f"token {GITHUB}") == ("github-pat",)


def test_regex_prefilter_is_skipped_for_text_with_lone_surrogates(prefiltered):
    assert prefiltered.rules_to_run("ghp_ \udc00") == ("github-pat", "jwt")


def test_regex_prefilter_is_skipped_for_short_texts_by_default(detector):
    text = "GitHub PATs start with ghp_."
    assert detector.rules_to_run(text) == detector.candidate_rules(text) == ("github-pat", "jwt")


def test_rule_with_non_ascii_regex_always_passes_the_regex_prefilter(tmp_path):
    det = SecretsDetector([load_pack(write_ru_pack(tmp_path))], prefilter_from=0)
    assert det.rules_to_run("ключ? no value here") == ("ru-key",)


@pytest.mark.parametrize(
    ("pattern", "widened"),
    [
        (r"\b(ghp_[A-Za-z0-9]{36})\b", r"\b(ghp_[A-Za-z0-9]{8,})\b"),
        (r"[^{}]{0,1000}?x{3}", r"[^{}]*?x{3,}"),
        (r"\{5\}[{]{2,4}", r"\{5\}[{]{2,}"),
        (r"[]{1}][[:alpha:]{]{2}", r"[]{1}][[:alpha:]{]{2,}"),
        (r"a{,5}", r"a{,5}"),
    ],
)
def test_widen_repeats_opens_counted_repeats_outside_classes_and_escapes(pattern, widened):
    assert widen_repeats(pattern) == widened


EQUIVALENCE_TEXTS = [
    f"aws_access_key_id = {AWS}",
    f"운영 키 {AWS} / 토큰 {GITHUB} / {STRIPE} 😀",
    f"Bearer {JWT}\npassword: Tr0ub4dor&3xQ\napi_key = q8Zr2LmX4vT9nB6kW1sY3hD7",
    "key with vertical\x0btab: password=Tr0u\x0bb4dor&3xQ",
    "token list: api_\u212aey = q8Zr2LmX4vT9nB6kW1sY3hD7",
    "pwd note: pa\u017fsword = Tr0ub4dor&3xQ",
    "-----BEGIN EC PRIVATE KEY-----",
]


@pytest.mark.parametrize("text", EQUIVALENCE_TEXTS)
def test_regex_prefilter_never_changes_the_findings(prefiltered, text):
    plain = SecretsDetector([load_pack(PACKS / "basic.yaml")], prefilter_from=None)
    assert prefiltered.detect(text) == plain.detect(text)
    assert plain.detect(text) != []


def test_rule_without_keywords_finds_its_format_in_any_text(detector):
    text = f"Bearer {JWT}"
    assert spans(detector.detect(text), text) == [("jwt", JWT)]


def test_entropy_floor_drops_a_low_entropy_password(detector):
    assert detector.detect("password = aaaaaaaaaaaa") == []


def test_entropy_floor_keeps_a_high_entropy_password(detector):
    text = 'db_password = "Tr0ub4dor&3xQ"'
    assert spans(detector.detect(text), text) == [("generic-password", "Tr0ub4dor&3xQ")]


def test_generic_rule_finding_has_its_lower_score(detector):
    (found,) = detector.detect('db_password = "Tr0ub4dor&3xQ"')
    assert (found.score, found.severity) == (0.6, "medium")


@pytest.mark.parametrize(
    ("value", "bits"), [("aaaa", 0.0), ("aabb", 1.0), ("abcd", 2.0), ("", 0.0)]
)
def test_shannon_entropy_in_bits_per_character(value, bits):
    assert shannon_entropy(value) == bits


def test_specific_rule_beats_generic_rule_on_the_same_span(detector):
    text = f'api_key = "{STRIPE}"'
    assert spans(detector.detect(text), text) == [("stripe-secret-key", STRIPE)]


def test_stopword_drops_the_documented_aws_example_key(detector):
    assert detector.detect("aws_access_key_id = AKIAIOSFODNN7EXAMPLE") == []


@pytest.mark.parametrize(
    "placeholder",
    ["xxxxxxxxxxxx", "XXXX", "********", "<your-api-token>", "${API_TOKEN}", "{{api_token}}"],
)
def test_global_allowlist_drops_placeholders(placeholders, placeholder):
    assert placeholders.detect(f"token = {placeholder}") == []


def test_real_looking_value_passes_the_same_allowlist(placeholders):
    text = "token = Zq8vR2mW5kT9"
    assert spans(placeholders.detect(text), text) == [("any-token-assignment", "Zq8vR2mW5kT9")]


def test_global_stopword_matches_in_any_case(placeholders):
    assert placeholders.detect("token = MyExampleValue42") == []


def test_rule_stopword_drops_its_secret(placeholders):
    assert placeholders.detect("token = [REDACTED]") == []


def test_rule_allowlist_drops_its_secret(placeholders):
    assert placeholders.detect("token = sk_test_51Hx9") == []


def test_detect_batch_equals_detect_per_text(detector):
    texts = [f"k={AWS}", "nothing here", f"t: {GITHUB} and {JWT}", ""]
    assert detector.detect_batch(texts) == [detector.detect(t) for t in texts]


def test_threads_sharing_one_detector_get_the_same_findings(detector):
    texts = [f"{i} 한글 {AWS} {GITHUB}" if i % 2 else f"plain {i}" for i in range(200)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(detector.detect, texts)) == [detector.detect(t) for t in texts]


def test_without_hyperscan_the_fallback_finds_the_same(monkeypatch, detector):
    monkeypatch.setattr(secrets, "hyperscan", None)
    fallback = SecretsDetector.from_paths([PACKS / "basic.yaml"])
    text = f"Ключ: {AWS}, GHP token {GITHUB}, password=Tr0ub4dor&3xQ"
    assert fallback.candidate_rules(text) == detector.candidate_rules(text)
    assert fallback.detect(text) == detector.detect(text)


def write_ru_pack(tmp_path: Path) -> Path:
    pack = tmp_path / "ru.yaml"
    pack.write_text(
        "version: 1\nrules:\n  - id: ru-key\n    description: key\n    type: ru_key\n"
        "    regex: '(?i)ключ=([0-9a-f]{16})'\n    keywords: [ключ]\n    severity: high\n",
        encoding="utf-8",
    )
    return pack


def test_non_ascii_keyword_matches_regardless_of_case(tmp_path):
    text = "КЛЮЧ=0123456789abcdef"
    assert spans(SecretsDetector.from_paths([write_ru_pack(tmp_path)]).detect(text), text) == [
        ("ru-key", "0123456789abcdef")
    ]


def test_gitleaks_pack_finds_its_formats():
    det = SecretsDetector.from_paths([PACKS / "gitleaks.toml"])
    text = (
        "gitlab: glpat-AbCdEfGhIjKlMnOpQrSt\n"
        "npm: npm_q8zr2lmx4vt9nb6kw1sy3hd7pa5ce0fgj2ui\n"
        'SVC_TOKEN = "a8f3k2m9x7q1w5e6r4t0y2u8i3o7p1zs"\n'
        "licence LIC-AB12-CD34-EF56\n"
    )
    assert [(f.type, text[f.start : f.end]) for f in det.detect(text)] == [
        ("gitlab_pat", "glpat-AbCdEfGhIjKlMnOpQrSt"),
        ("npm_access_token", "npm_q8zr2lmx4vt9nb6kw1sy3hd7pa5ce0fgj2ui"),
        ("internal_service_token", "a8f3k2m9x7q1w5e6r4t0y2u8i3o7p1zs"),
        ("legacy_license_key", "LIC-AB12-CD34-EF56"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        'service_token = "a8f3k2m9x7q1w5e6r4t0y2u8i3o7p1zs"  # test-fixture',
        "glpat-Placeholder0000000000",
        "licence LIC-TEST-CD34-EF56",
        "npm_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ",
    ],
    ids=["line-allowlist", "global-match-allowlist", "old-style-stopword", "entropy"],
)
def test_gitleaks_allowlists_and_entropy_drop_findings(text):
    assert SecretsDetector.from_paths([PACKS / "gitleaks.toml"]).detect(text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("sandbox: glpat-00000AbCdEfGhIjKlMnO", 0),
        ("prod: glpat-00000AbCdEfGhIjKlMnO", 1),
        ("sandbox: glpat-AbCdEfGhIjKlMnOpQrSt", 1),
        ("ci-runner register glpat-AbCdEfGhIjKlMnOpQrSt", 0),
        ("ci-runner licence LIC-AB12-CD34-EF56", 1),
    ],
    ids=["both-hold", "line-misses", "stopword-misses", "targeted", "other-rule-untargeted"],
)
def test_gitleaks_and_and_targeted_allowlists(text, found):
    assert len(SecretsDetector.from_paths([PACKS / "gitleaks.toml"]).detect(text)) == found


def test_later_pack_replaces_a_rule_with_the_same_id(tmp_path):
    basic = load_pack(PACKS / "basic.yaml")
    override = tmp_path / "site.yaml"
    override.write_text(
        "version: 1\nrules:\n  - id: aws-access-key-id\n    description: tuned\n"
        "    type: aws_access_key\n    regex: '(AKIA[A-Z2-7]{16})'\n    severity: low\n",
        encoding="utf-8",
    )
    det = SecretsDetector([basic, load_pack(override)])
    assert len(det.rules) == len(basic.rules)
    assert det.detect(f"k {AWS}")[0].severity == "low"


def test_build_loads_rules_dir_pack_and_extra_packs(tmp_path):
    shutil.copy(PACKS / "basic.yaml", tmp_path / "secrets.yaml")
    settings = Settings(rules_dir=tmp_path, extra_secret_packs=(PACKS / "gitleaks.toml",))
    det = build(settings)
    assert (det.name, det.categories) == ("secrets", frozenset({"secret"}))
    assert [r.id for r in det.rules][-2:] == ["internal-service-token", "legacy-license-key"]


def test_build_without_a_pack_is_a_clear_error(tmp_path):
    with pytest.raises(RulePackError) as caught:
        build(Settings(rules_dir=tmp_path))
    assert caught.value.source == str(tmp_path / "secrets.yaml")


EVIL_PACK = """\
version: 1
rules:
  - id: nested
    description: nested quantifiers, exponential for a backtracking engine
    type: evil
    regex: '((?:a+)+b)'
    severity: low
  - id: alternation
    description: overlapping alternation, exponential for a backtracking engine
    type: evil
    regex: '((?:a|aa)+c)'
    severity: low
"""


@pytest.mark.parametrize("prefilter_from", [0, None], ids=["prefilter", "re2-only"])
def test_nested_quantifier_rules_scan_adversarial_megabyte_in_under_a_second(
    tmp_path, prefilter_from
):
    pack = tmp_path / "evil.yaml"
    pack.write_text(EVIL_PACK, encoding="utf-8")
    det = SecretsDetector([load_pack(pack)], prefilter_from=prefilter_from)
    text = "a" * 1_000_000 + "!" + "ab"
    started = time.perf_counter()
    found = det.detect(text)
    elapsed = time.perf_counter() - started
    assert spans(found, text) == [("nested", "ab")]
    assert elapsed < 1.0


def test_ten_megabyte_input_with_scattered_secrets_is_scanned_whole(detector):
    filler = "회의록: 다음 분기 계획을 검토했습니다. The plan was reviewed. " * 160
    blocks = [filler + (f"aws={AWS}\n" if i % 100 == 0 else "") for i in range(1000)]
    text = "".join(blocks)
    assert len(text) > 10_000_000 // 2 and len(text.encode()) > 10_000_000
    found = detector.detect(text)
    assert [f.rule for f in found] == ["aws-access-key-id"] * 10
    last = text.rindex(AWS)
    assert (found[-1].start, found[-1].end) == (last, last + len(AWS))
