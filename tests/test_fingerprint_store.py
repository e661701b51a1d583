"""The fingerprint store and `index add`: versions, transactions, incremental runs, boilerplate
and bad input, on small real trees in tmp_path and real SQLite files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from dlpproxy.fingerprint import indexer
from dlpproxy.fingerprint.indexer import index_paths
from dlpproxy.fingerprint.store import COMMON_MIN_FILES, FingerprintStore, FingerprintStoreError
from tests.test_fingerprint_samples import GAME, LEDGER, MEMO, company_tree, distinct_module

MB = 1024 * 1024


def add(store: FingerprintStore, root: Path, label: str = "helios", **kw):
    return index_paths(store, [root], label, kw.pop("max_bytes", MB), **kw)


@pytest.fixture
def store(tmp_path):
    with FingerprintStore(tmp_path / "fp.db", create=True) as s:
        yield s


def test_indexes_code_and_documents_and_leaves_out_boilerplate(tmp_path, store):
    root = company_tree(tmp_path / "repo")
    summary = add(store, root)
    files = store.files_of("helios")
    assert sorted(Path(p).name for p in files) == ["ledger.py", "minutes.md"]
    assert {r.kind for r in files.values()} == {"code", "document"}
    assert summary.skipped["generated file"] == 1  # api_pb2.py
    assert summary.skipped["licence text"] == 1  # LICENSE; node_modules is never walked
    assert summary.problems == []


def test_store_keeps_hashes_only(tmp_path, store):
    add(store, company_tree(tmp_path / "repo"))
    raw = (tmp_path / "fp.db").read_bytes()
    for phrase in (b"reconcile_batch", b"pricing committee", b"Nightjar"):
        assert phrase not in raw


def test_second_run_reads_only_changed_files(tmp_path, store):
    root = company_tree(tmp_path / "repo")
    add(store, root)
    again = add(store, root)
    assert (again.indexed, again.unchanged) == (0, 2)
    ledger = root / "billing" / "ledger.py"
    ledger.write_text(LEDGER + "\n\ndef audit_trail():\n    return []\n", encoding="utf-8")
    changed = add(store, root)
    assert (changed.indexed, changed.unchanged) == (1, 1)
    assert len(store.files_of("helios")) == 2


def test_a_touched_file_with_the_same_content_is_only_re_dated(tmp_path, store):
    root = company_tree(tmp_path / "repo")
    add(store, root)
    memo = root / "docs" / "minutes.md"
    os.utime(memo, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    summary = add(store, root)
    assert (summary.indexed, summary.unchanged) == (0, 2)
    assert store.files_of("helios")[str(memo)].mtime_ns == 1_700_000_000_000_000_000


def test_vanished_files_are_removed_and_labels_can_be_removed(tmp_path, store):
    root = company_tree(tmp_path / "repo")
    add(store, root)
    (root / "docs" / "minutes.md").unlink()
    assert add(store, root).removed == 1
    assert [Path(p).name for p in store.files_of("helios")] == ["ledger.py"]
    assert store.remove_label("helios") == 1
    assert store.labels() == []


def test_a_store_from_a_newer_version_is_refused(tmp_path, store):
    store.db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(FingerprintStoreError, match=r"newer dlpproxy .*schema 99"):
        FingerprintStore(tmp_path / "fp.db")


def test_a_store_with_other_parameters_must_be_rebuilt(tmp_path, store):
    store.db.execute("UPDATE meta SET value = 'code:k5' WHERE key = 'params'")
    with pytest.raises(FingerprintStoreError, match="another dlpproxy version"):
        FingerprintStore(tmp_path / "fp.db")


def test_a_file_that_is_not_an_index_is_a_clear_error(tmp_path):
    (tmp_path / "notes.db").write_text("hello", encoding="utf-8")
    with pytest.raises(FingerprintStoreError, match="not a fingerprint index"):
        FingerprintStore(tmp_path / "notes.db")
    with pytest.raises(FingerprintStoreError, match="no fingerprint index"):
        FingerprintStore(tmp_path / "missing.db")


def many_files(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        (root / f"m{i}.py").write_text(GAME.replace("Dungeon", f"Dungeon{i}"), encoding="utf-8")
    return root


def test_a_crash_inside_a_batch_leaves_the_store_as_it_was(tmp_path, store, monkeypatch):
    add(store, company_tree(tmp_path / "repo"))
    before = store.generation()
    monkeypatch.setattr(indexer, "BATCH_FILES", 2)

    def crash(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        add(store, many_files(tmp_path / "more", 6), label="more", on_batch=crash)
    assert store.files_of("more") == {}
    assert len(store.files_of("helios")) == 2
    assert store.generation() == before


def test_a_crash_between_batches_keeps_whole_files_and_the_next_run_goes_on(
    tmp_path, store, monkeypatch
):
    monkeypatch.setattr(indexer, "BATCH_FILES", 2)
    batches = []

    def crash_on_second(n: int) -> None:
        batches.append(n)
        if len(batches) == 2:
            raise KeyboardInterrupt

    root = many_files(tmp_path / "more", 6)
    with pytest.raises(KeyboardInterrupt):
        add(store, root, label="more", on_batch=crash_on_second)
    assert len(store.files_of("more")) == 2
    rows = store.db.execute("SELECT count, length(hashes) FROM files").fetchall()
    assert all(size == 5 * count and count > 0 for count, size in rows)
    summary = add(store, root, label="more")
    assert (summary.indexed, summary.unchanged) == (4, 2)


def test_fingerprints_found_in_many_files_are_left_out(tmp_path, store):
    root = tmp_path / "modules"
    root.mkdir()
    for i in range(COMMON_MIN_FILES + 2):  # different modules that all embed GAME
        (root / f"m{i}.py").write_text(distinct_module(i) + "\n\n" + GAME, encoding="utf-8")
    (root / "ledger.py").write_text(LEDGER, encoding="utf-8")
    add(store, root)
    index, files = store.load()
    assert index.suppressed > 0
    names = {Path(files[m.file_id][1]).name for m in index.match(GAME + "\n" + LEDGER)}
    assert names == {"ledger.py"}


def test_identical_copies_count_once_and_do_not_make_their_content_common(tmp_path, store):
    root = tmp_path / "mirrors"
    for i in range(COMMON_MIN_FILES + 2):
        (root / f"m{i}").mkdir(parents=True)
        (root / f"m{i}" / "ledger.py").write_text(LEDGER, encoding="utf-8")
    add(store, root)
    index, files = store.load()
    assert index.suppressed == 0 and len(files) == 1
    [match] = index.match(LEDGER)
    assert files[match.file_id][1].endswith("ledger.py")


def test_binary_huge_unreadable_and_foreign_encodings_are_skipped_or_noted(tmp_path, store):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "blob.py").write_bytes(b"\x00\x01\x02binary\x00" * 10)
    (root / "huge.txt").write_text(MEMO * 200, encoding="utf-8")
    (root / "latin.py").write_bytes(LEDGER.replace("Helios", "Hélios").encode("cp1252"))
    (root / "garbage.txt").write_bytes(b"\x81\x8d\x8f\x90\x9d" * 20)
    (root / "ok.md").write_text(MEMO, encoding="utf-8")
    summary = add(store, root, max_bytes=64 * 1024)
    assert sorted(Path(p).name for p in store.files_of("helios")) == ["latin.py", "ok.md"]
    assert summary.skipped["binary"] == 2
    assert summary.skipped["too large"] == 1
    assert summary.notes["not UTF-8: read as Windows-1252"] == 1
    reasons = {Path(s.path).name: s.reason for s in summary.problems}
    assert reasons["huge.txt"].startswith("too large (")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_files_are_skipped(tmp_path, store):
    root = company_tree(tmp_path / "repo")
    secret = root / "billing" / "ledger.py"
    secret.chmod(0)
    try:
        summary = add(store, root)
    finally:
        secret.chmod(0o644)
    assert summary.skipped["unreadable"] == 1
    assert [Path(p).name for p in store.files_of("helios")] == ["minutes.md"]


def test_symlink_loops_are_reported_not_followed_forever(tmp_path, store):
    root = company_tree(tmp_path / "repo")
    (root / "docs" / "again").symlink_to(root)
    (root / "self.md").symlink_to(root / "self.md")
    summary = add(store, root)
    assert summary.skipped["symlink loop"] >= 1
    assert sum(n for reason, n in summary.skipped.items() if "symlink" in reason) >= 2
    assert len(store.files_of("helios")) == 2


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_git_repository_indexes_its_tracked_files_only(tmp_path, store):
    root = company_tree(tmp_path / "repo")
    (root / ".gitignore").write_text("scratch/\n", encoding="utf-8")
    (root / "scratch").mkdir()
    (root / "scratch" / "draft.md").write_text(MEMO, encoding="utf-8")
    git = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "billing", "docs", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], check=True)
    add(store, root)
    assert sorted(Path(p).name for p in store.files_of("helios")) == ["ledger.py", "minutes.md"]


def test_concurrent_reader_sees_the_previous_state_during_a_write(tmp_path, store):
    add(store, company_tree(tmp_path / "repo"))
    reader = sqlite3.connect(tmp_path / "fp.db")
    with store.transaction():
        store.delete(r.id for r in store.files_of("helios").values())
        assert reader.execute("SELECT count(*) FROM files").fetchone()[0] == 2
    assert reader.execute("SELECT count(*) FROM files").fetchone()[0] == 0


def test_a_killed_index_run_leaves_a_consistent_store(tmp_path):
    """SIGKILL in the middle of `index add` (a real process): whole files only, and the next
    run finishes the job."""
    import signal
    import sys
    import time

    root = tmp_path / "big"
    root.mkdir()
    for i in range(3000):
        (root / f"m{i}.py").write_text(GAME.replace("Dungeon", f"Dungeon{i}"), encoding="utf-8")
    db = tmp_path / "fp.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-m", "dlpproxy", "index", "--db", str(db), "add", str(root)]
    proc = subprocess.Popen([*cmd, "--label", "big"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # the child's imports take seconds on a busy machine
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if db.exists() and _rows(db) > 0:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    with FingerprintStore(db) as store:
        rows = store.db.execute("SELECT count, length(hashes) FROM files").fetchall()
        assert 0 < len(rows) < 3000
        assert all(size == 5 * count for count, size in rows)
        summary = add(store, root, label="big")
        assert summary.unchanged == len(rows)
        assert len(store.files_of("big")) == 3000


def _rows(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=0.1) as conn:
            return int(conn.execute("SELECT count(*) FROM files").fetchone()[0])
    except sqlite3.Error:
        return 0
