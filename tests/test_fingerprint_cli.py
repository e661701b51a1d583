"""`dlpproxy index add|list|stats|remove`, through `dlpproxy.cli.main` and once as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dlpproxy.cli import main
from dlpproxy.fingerprint.store import FingerprintStore
from tests.test_fingerprint_samples import LEDGER, company_tree

ROOT = Path(__file__).resolve().parent.parent


def test_add_list_stats_remove(tmp_path, capsys):
    db = str(tmp_path / "fp.db")
    root = company_tree(tmp_path / "repo")
    assert main(["index", "add", str(root), "--label", "helios", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "label 'helios': 3 files seen, 2 indexed, 0 unchanged, 0 removed" in out
    assert "1 generated file" in out and "1 licence text" in out
    assert main(["index", "--db", db, "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("helios: 2 files (1 code)")
    assert str(root) in listed
    assert main(["index", "--db", db, "stats"]) == 0
    stats = capsys.readouterr().out
    assert "files: 2 (1 code)" in stats and "store size:" in stats and "schema 1" in stats
    assert main(["index", "--db", db, "remove", "helios"]) == 0
    assert "removed label 'helios': 2 files" in capsys.readouterr().out
    assert main(["index", "--db", db, "list"]) == 0
    assert "empty" in capsys.readouterr().out


def test_public_labels_are_marked_in_the_list(tmp_path, capsys):
    db = str(tmp_path / "fp.db")
    root = company_tree(tmp_path / "repo")
    assert main(["index", "--db", db, "add", str(root / "docs"), "--label", "std", "--public"]) == 0
    assert main(["index", "--db", db, "list"]) == 0
    assert "std [public: allow-list]: 1 files" in capsys.readouterr().out


def test_removing_an_unknown_label_is_an_error(tmp_path, capsys):
    db = str(tmp_path / "fp.db")
    main(["index", "--db", db, "add", str(company_tree(tmp_path / "repo")), "--label", "a"])
    capsys.readouterr()
    assert main(["index", "--db", db, "remove", "b"]) == 2
    assert "no label 'b'" in capsys.readouterr().err


def test_a_newer_store_is_refused_with_a_message_not_a_traceback(tmp_path, capsys):
    db = tmp_path / "fp.db"
    with FingerprintStore(db, create=True) as store:
        store.db.execute("UPDATE meta SET value = '7' WHERE key = 'schema'")
    root = company_tree(tmp_path / "repo")
    assert main(["index", "--db", str(db), "add", str(root), "--label", "x"]) == 2
    err = capsys.readouterr().err
    assert "dlpproxy index: error:" in err and "newer dlpproxy" in err
    assert "Traceback" not in err


def test_listing_a_missing_index_says_how_to_build_one(tmp_path, capsys):
    assert main(["index", "--db", str(tmp_path / "none.db"), "list"]) == 2
    assert "dlpproxy index add PATH --label NAME" in capsys.readouterr().err


def test_scan_with_the_fingerprint_detector_finds_indexed_code(tmp_path, capsys, monkeypatch):
    db = tmp_path / "fp.db"
    main(["index", "--db", str(db), "add", str(company_tree(tmp_path / "repo")), "--label", "h"])
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("why does this fail?\n" + LEDGER[LEDGER.index("def reconcile") :], "utf-8")
    monkeypatch.setenv("DLPPROXY_FINGERPRINT_DB", str(db))
    capsys.readouterr()
    assert main(["scan", "--detectors", "fingerprint", str(prompt)]) == 1
    assert "internal_code/indexed_code [fingerprint, high" in capsys.readouterr().out


def test_as_a_process_with_a_progress_bar_on_stderr(tmp_path):
    db = tmp_path / "fp.db"
    root = company_tree(tmp_path / "repo")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "dlpproxy", "index", "--db", str(db)]
    shown = subprocess.run(
        [*base, "add", str(root), "--label", "helios", "--progress"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "indexing [" in shown.stderr and "3/3 files 100%" in shown.stderr
    quiet = subprocess.run(
        [*base, "add", str(root), "--label", "helios"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert quiet.returncode == 0
    assert "indexing [" not in quiet.stderr  # stderr is a pipe, not a terminal
    assert "0 indexed, 2 unchanged" in quiet.stdout
