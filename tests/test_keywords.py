"""Keywords and markings: the shipped pack's examples, word boundaries, scripts, pack errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlpproxy.detect.keywords import KeywordDetector, KeywordGroup, load_keyword_pack
from dlpproxy.errors import RulePackError

PACK = Path(__file__).resolve().parent.parent / "rules" / "keywords.yaml"
GROUPS = load_keyword_pack(PACK)
DETECTOR = KeywordDetector(GROUPS)
POSITIVE = [(g.id, text) for g in GROUPS for text in g.positive]
NEGATIVE = [(g.id, text) for g in GROUPS for text in g.negative]


@pytest.mark.parametrize(("group", "text"), POSITIVE)
def test_pack_positive_examples_are_found(group: str, text: str) -> None:
    assert group in {f.rule for f in DETECTOR.detect(text)}


@pytest.mark.parametrize(("group", "text"), NEGATIVE)
def test_pack_negative_examples_are_not_found(group: str, text: str) -> None:
    assert group not in {f.rule for f in DETECTOR.detect(text)}


def group(terms: tuple[str, ...], case_sensitive: bool = False) -> KeywordGroup:
    return KeywordGroup("code-names", "d", "code_name", "confidential_marking", "high", 0.9,
                        case_sensitive, terms)  # fmt: skip


def test_latin_terms_match_whole_words_only() -> None:
    det = KeywordDetector((group(("falcon",)),))
    assert det.detect("the falconry club") == []
    assert [(f.start, f.end) for f in det.detect("Project Falcon.")] == [(8, 14)]


def test_cjk_terms_match_inside_words_with_exact_char_offsets() -> None:
    det = KeywordDetector((group(("대외비",)),))
    text = "😀 이 자료는 대외비입니다"
    (f,) = det.detect(text)
    assert text[f.start : f.end] == "대외비"


def test_case_sensitive_group_ignores_other_cases() -> None:
    det = KeywordDetector((group(("CONFIDENTIAL",), case_sensitive=True),))
    assert det.detect("confidential") == []
    assert len(det.detect("CONFIDENTIAL")) == 1


def test_thousands_of_customer_names_compile_into_one_scan() -> None:
    names = tuple(f"Customer{n:05d} Holdings" for n in range(5000))
    det = KeywordDetector((group(names),))
    (f,) = det.detect("renewal for customer04321 holdings is due")
    assert (f.start, f.end) == (12, 34)


def test_empty_pack_finds_nothing() -> None:
    assert KeywordDetector(()).detect("CONFIDENTIAL") == []


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "keywords.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_unknown_field_names_file_line_and_group(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ngroups:\n  - id: marks\n    description: d\n"
                 "    type: t\n    terms: [a]\n    colour: red\n")  # fmt: skip
    with pytest.raises(RulePackError) as caught:
        load_keyword_pack(path)
    assert str(caught.value) == (
        f"{path}:3: rule 'marks': unknown field 'colour' (expected one of: case_sensitive, "
        "category, description, examples, id, score, severity, terms, type)"
    )


def test_bad_severity_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ngroups:\n  - id: m\n    description: d\n    type: t\n"
                 "    terms: [a]\n    severity: urgent\n")  # fmt: skip
    with pytest.raises(RulePackError, match=r"keywords.yaml:3: rule 'm': severity 'urgent'"):
        load_keyword_pack(path)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ngroups:\n  - id: [unclosed\n")
    with pytest.raises(RulePackError, match=r"keywords.yaml:4: invalid YAML"):
        load_keyword_pack(path)


def test_missing_terms_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ngroups:\n  - id: m\n    description: d\n    type: t\n")
    with pytest.raises(RulePackError, match="missing required field 'terms'"):
        load_keyword_pack(path)
