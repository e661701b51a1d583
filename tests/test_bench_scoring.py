"""The benchmark's scoring and peer-output handling, as the data READMEs define detection."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench" / "peers"))

from peer_io import line_starts, locate_value  # noqa: E402

from bench.datasets import Record, Span  # noqa: E402
from bench.scoring import Found, overlaps, score  # noqa: E402
from bench.tools import parse_output  # noqa: E402

SECRET_LINE = 'db:\n  password = "Xk2!fz9Lq"\n'
SECRET = Record("s1", SECRET_LINE, "positive", (Span(18, 27, "Password"),))
CODE = Record("n1", "def check(token):\n    return token\n", "negative", ())
RRN_DECOY = Record(
    "n2", "고객 김민수, 주민번호 900101-1234568 확인", "negative", (), (Span(13, 27, "kr_rrn"),)
)


def test_spans_that_only_touch_do_not_overlap():
    assert not overlaps(0, 5, 5, 9)


def test_spans_sharing_one_character_overlap():
    assert overlaps(0, 6, 5, 9)


def test_positive_is_detected_when_a_finding_overlaps_its_span():
    result = score([SECRET], {"s1": [Found(20, 30, "generic_password")]})
    assert (result.detected, result.spans) == (1, 1)


def test_finding_beside_the_labelled_span_does_not_detect_it():
    result = score([SECRET], {"s1": [Found(0, 3, "yaml_key")]})
    assert result.detected == 0


def test_any_finding_on_a_secrets_negative_is_a_false_positive():
    result = score([CODE], {"n1": [Found(10, 15, "keyword")]})
    assert (result.false_positives, result.negatives) == (1, 1)


def test_pii_negative_counts_only_a_finding_on_its_decoy():
    name_only = score([RRN_DECOY], {"n2": [Found(3, 6, "person")]}, region="decoys")
    assert name_only.false_positives == 0


def test_pii_finding_on_the_decoy_is_flagged_under_the_decoy_type():
    result = score([RRN_DECOY], {"n2": [Found(13, 27, "kr_rrn")]}, region="decoys")
    assert result.flagged_of(["kr_rrn"]) == (1, 1)


def test_findings_the_filter_rejects_are_not_counted():
    only_secrets = score(
        [SECRET],
        {"s1": [Found(18, 27, "source_code", "source_code")]},
        lambda f: f.category == "secret",
    )
    assert only_secrets.detected == 0


def test_recall_per_type_counts_every_span_of_a_record():
    two = Record("s2", "a=k1 b=k2", "positive", (Span(2, 4, "Key"), Span(7, 9, "Key")))
    result = score([two], {"s2": [Found(2, 4, "key")]})
    assert result.recall_of(["Key"]) == (1, 2)


def test_peer_output_skips_log_lines_and_counts_missing_records():
    stdout = "\n".join(
        ["2026-11-23 [warning] Detected secrets", json.dumps({"id": "a", "findings": []})]
    )
    run = parse_output("peer", stdout, ["a", "b"], 1.0)
    assert (run.ok, run.record_errors, list(run.findings)) == (True, 1, ["a"])


def test_peer_that_answers_only_errors_is_not_available_with_its_reason():
    stdout = json.dumps({"id": "a", "error": "OSError: no model"})
    run = parse_output("peer", stdout, ["a"], 1.0)
    assert run.error == "OSError: no model"


def test_peer_value_is_located_on_its_reported_line():
    text = "token = abc\nother = x\ntoken = abc\n"
    assert locate_value(text, line_starts(text), 2, "abc") == (30, 33)


def test_peer_value_missing_from_the_text_spans_its_whole_line():
    text = "first\r\nsecond line\n"
    assert locate_value(text, line_starts(text), 1, "not-there") == (7, 18)


def test_missed_positive_and_flagged_negative_are_named_by_id():
    result = score([SECRET, CODE], {"n1": [Found(0, 3, "keyword")]})
    assert (result.missed_ids, result.false_positive_ids) == (("s1",), ("n1",))
