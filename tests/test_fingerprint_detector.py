"""The fingerprint detector over a real index: findings, spans, renamed code, unrelated text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dlpproxy.detect.fingerprint import FingerprintDetector, build
from dlpproxy.engine import Engine
from dlpproxy.errors import DlpError
from dlpproxy.fingerprint.indexer import index_paths
from dlpproxy.fingerprint.store import FingerprintStore
from dlpproxy.policy import load_policy
from dlpproxy.settings import Settings
from dlpproxy.types import INTERNAL_CODE, INTERNAL_DOCUMENT
from tests.test_fingerprint_samples import (
    GAME,
    LEDGER,
    MEMO,
    OTHER_PROSE,
    company_tree,
    distinct_note,
    renamed_ledger,
)

ROOT = Path(__file__).resolve().parent.parent
ASK = "Hi! Can you explain why this function sometimes raises on the last day of the month?\n\n"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fp")
    root = company_tree(folder / "repo")
    with FingerprintStore(folder / "fp.db", create=True) as store:
        index_paths(store, [root], "helios", 1024 * 1024)
    return folder / "fp.db"


@pytest.fixture(scope="module")
def detector(db) -> FingerprintDetector:
    return FingerprintDetector(db)


def reconcile() -> str:
    return LEDGER[LEDGER.index("def reconcile_batch") : LEDGER.index("def dunning_level")]


def test_pasted_company_code_is_internal_code_with_file_label_and_span(detector):
    code = reconcile()
    prompt = ASK + code + "\nThanks."
    [finding] = detector.detect(prompt)
    assert (finding.category, finding.type) == (INTERNAL_CODE, "indexed_code")
    assert finding.detector == "fingerprint"
    assert finding.rule.startswith("helios:") and finding.rule.endswith("billing/ledger.py")
    assert finding.severity == "high"
    assert 0.5 <= finding.score <= 1.0
    # the span runs from the first to the last shared k-gram: inside the code, most of it
    assert len(ASK) <= finding.start < len(ASK) + len(code) // 10
    assert len(ASK) + len(code) * 9 // 10 < finding.end <= len(ASK) + len(code)


def test_renamed_and_reformatted_code_still_matches(detector):
    prompt = ASK + renamed_ledger()
    findings = detector.detect(prompt)
    assert [f.type for f in findings] == ["indexed_code"]
    assert findings[0].rule.endswith("ledger.py")


def test_a_few_lines_of_a_memo_are_an_internal_document(detector):
    excerpt = "\n".join(MEMO.splitlines()[2:7])
    [finding] = detector.detect("Please shorten this for an e-mail:\n" + excerpt)
    assert (finding.category, finding.type) == (INTERNAL_DOCUMENT, "indexed_document")
    assert finding.rule.endswith("docs/minutes.md")
    assert finding.severity == "medium" or finding.score >= 0.5


def test_unrelated_code_and_prose_give_nothing(detector):
    assert detector.detect(ASK + GAME) == []
    assert detector.detect(OTHER_PROSE) == []
    assert detector.detect("") == []


def test_vendored_and_generated_copies_are_not_in_the_index(detector):
    # GAME sits in node_modules/ and in a *_pb2.py file of the indexed tree
    assert detector.detect(GAME) == []


def test_the_detector_sees_a_changed_store_without_a_restart(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "memo.md").write_text(MEMO, encoding="utf-8")
    with FingerprintStore(tmp_path / "fp.db", create=True) as store:
        index_paths(store, [root], "docs", 1024 * 1024)
    detector = FingerprintDetector(tmp_path / "fp.db", refresh_s=0.0)
    assert detector.detect(ASK + GAME) == []
    (root / "game.py").write_text(GAME, encoding="utf-8")
    with FingerprintStore(tmp_path / "fp.db") as store:
        index_paths(store, [root], "docs", 1024 * 1024)
    assert [f.type for f in detector.detect(ASK + GAME)] == ["indexed_code"]


def test_build_without_an_index_is_a_clear_error(tmp_path):
    settings = replace(Settings(), fingerprint_db=tmp_path / "none.db")
    with pytest.raises(DlpError, match=r"no fingerprint index at .*dlpproxy index add"):
        build(settings)


def test_engine_and_shipped_policy_block_pasted_company_code(db):
    settings = replace(Settings(), fingerprint_db=db).with_detectors(("secrets", "fingerprint"))
    with Engine(settings) as engine:
        result = engine.scan_sync(ASK + reconcile())
    decision = load_policy(ROOT / "rules" / "policy.yaml").decide(result.findings)
    assert decision.action == "block"
    assert decision.rule == "block-internal-code"


def test_public_code_is_subtracted_and_never_reported(tmp_path):
    company = tmp_path / "company"
    company.mkdir()
    # the company's file embeds public code (a copied helper) beside its own
    (company / "billing.py").write_text(GAME + "\n\n" + LEDGER, encoding="utf-8")
    public = tmp_path / "public"
    public.mkdir()
    (public / "dungeon.py").write_text(GAME, encoding="utf-8")
    with FingerprintStore(tmp_path / "fp.db", create=True) as store:
        index_paths(store, [company], "helios", 1024 * 1024)
        index_paths(store, [public], "stdlib", 1024 * 1024, public=True)
        assert [(i.label, i.public) for i in store.labels()] == [
            ("helios", False),
            ("stdlib", True),
        ]
    detector = FingerprintDetector(tmp_path / "fp.db")
    assert detector.detect(ASK + GAME) == []
    [finding] = detector.detect(ASK + reconcile())
    assert finding.rule.endswith("billing.py")


def test_a_public_file_the_company_copied_unchanged_is_still_subtracted(tmp_path):
    for folder in ("company", "public"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "dungeon.py").write_text(GAME, encoding="utf-8")
    (tmp_path / "company" / "ledger.py").write_text(LEDGER, encoding="utf-8")
    with FingerprintStore(tmp_path / "fp.db", create=True) as store:
        index_paths(store, [tmp_path / "company"], "helios", 1024 * 1024)
        index_paths(store, [tmp_path / "public"], "stdlib", 1024 * 1024, public=True)
    detector = FingerprintDetector(tmp_path / "fp.db")
    assert detector.detect(ASK + GAME) == []
    assert detector.detect(ASK + reconcile())


def test_a_label_keeps_its_kind(tmp_path):
    root = company_tree(tmp_path / "repo")
    with FingerprintStore(tmp_path / "fp.db", create=True) as store:
        index_paths(store, [root], "helios", 1024 * 1024)
        with pytest.raises(DlpError, match="label 'helios' holds company content"):
            index_paths(store, [root], "helios", 1024 * 1024, public=True)


def test_a_paste_that_begins_inside_a_docstring_is_read_as_code(detector):
    # it ends inside the next docstring: read as it stands, the code between would be a string
    start = LEDGER.index("matched against the bank statement")
    end = LEDGER.index("Escalate reminders") + 10
    [finding] = detector.detect(LEDGER[start:end])
    assert finding.type == "indexed_code" and finding.rule.endswith("ledger.py")


def test_a_quote_shared_by_several_documents_weighs_less_than_one_of_a_single_document(tmp_path):
    quote = "\n".join(MEMO.splitlines()[2:4])
    for copies in (1, 3):
        root = tmp_path / f"docs{copies}"
        root.mkdir()
        for i in range(copies):  # different documents that all quote the memo
            (root / f"m{i}.md").write_text(distinct_note(i) + "\n\n" + MEMO, "utf-8")
        with FingerprintStore(tmp_path / f"fp{copies}.db", create=True) as store:
            index_paths(store, [root], "legal", 1024 * 1024)
        detector = FingerprintDetector(tmp_path / f"fp{copies}.db")
        assert bool(detector.detect(quote)) == (copies == 1)
        assert detector.detect(MEMO)  # the whole memo is enough either way
