"""The fingerprint store: SQLite, one row per indexed file, its fingerprints as a packed blob.

Only hashes are kept (32-bit fingerprints with an 8-bit tag each, a SHA-256 of the content for
change detection), never the text, so the store itself leaks nothing. The schema version and
the normalisation parameters are recorded; a store written by another version is refused with a
message instead of being misread. Every change happens inside one transaction and bumps
`generation`, which the detector polls to reload.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlpproxy.errors import DlpError
from dlpproxy.fingerprint.matcher import MemoryIndex
from dlpproxy.fingerprint.winnow import (
    CODE,
    CODE_LINES,
    PROSE,
    PROSE_LINES,
    STRINGS_AS_WRITTEN,
    U8,
    U32,
)

SCHEMA_VERSION = 1
# Any change to tokenising or hashing changes the fingerprints: such a store must be rebuilt.
PARAMS = (
    ";".join(
        f"{c.name}:k{c.k}w{c.w}d{c.min_distinct}g{c.line_gap}{'r' if c.renames else ''}"
        + (f"s{c.short}" if c.short else "")
        for c in (CODE, PROSE, CODE_LINES, PROSE_LINES)
    )
    + f";norm14s{STRINGS_AS_WRITTEN}"
)

# Fingerprints in more files than this (or than 1 in 10 files) are left out as common.
COMMON_MIN_FILES = 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (name TEXT PRIMARY KEY, public INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS roots (
    label TEXT NOT NULL, path TEXT NOT NULL, added REAL NOT NULL, PRIMARY KEY (label, path)
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 BLOB NOT NULL,
    lines INTEGER NOT NULL,
    count INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    indexed REAL NOT NULL
);
"""


class FingerprintStoreError(DlpError):
    """The fingerprint store is missing, unreadable or from another version."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What the store knows of one file (the fingerprints themselves stay in the blob)."""

    id: int
    label: str
    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: bytes


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file just fingerprinted, ready to be written."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: bytes
    lines: int
    hashes: U32
    tags: U8
    replaces: int | None = None  # the id of this file's previous version in the store


@dataclass(frozen=True, slots=True)
class LabelInfo:
    label: str
    roots: tuple[str, ...]
    files: int
    code_files: int
    lines: int
    source_bytes: int
    fingerprints: int
    updated: float
    public: bool = False  # an allow-list: its fingerprints are subtracted, never reported


class FingerprintStore:
    """One SQLite file of fingerprints; `create=True` makes it when missing."""

    def __init__(self, path: Path, create: bool = False):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise FingerprintStoreError(
                f"no fingerprint index at {self.path}: build one with "
                "`dlpproxy index add PATH --label NAME` (or set DLPPROXY_FINGERPRINT_DB)"
            )
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA busy_timeout = 5000")
            self._prepare(create)
        except sqlite3.DatabaseError as exc:
            raise FingerprintStoreError(f"{self.path} is not a fingerprint index: {exc}") from None

    def _prepare(self, create: bool) -> None:
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            if not create:
                raise FingerprintStoreError(f"{self.path} is not a fingerprint index (no meta)")
            # small pages: most files' fingerprint blobs are a few hundred bytes, and a large
            # page would be mostly empty
            self.db.execute("PRAGMA page_size = 1024")
            self.db.execute("PRAGMA journal_mode = WAL")
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema", str(SCHEMA_VERSION)), ("params", PARAMS), ("generation", "0")],
                )
        self._check_version()

    def _check_version(self) -> None:
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        version = int(meta.get("schema", "0") or 0)
        if version > SCHEMA_VERSION:
            raise FingerprintStoreError(
                f"{self.path} was built by a newer dlpproxy (index schema {version}; this one "
                f"reads {SCHEMA_VERSION}): upgrade dlpproxy, or build a new index with --db"
            )
        if version != SCHEMA_VERSION or meta.get("params") != PARAMS:
            raise FingerprintStoreError(
                f"{self.path} was built by another dlpproxy version (schema {version}, "
                f"parameters {meta.get('params')!r}): delete it and run `dlpproxy index add` again"
            )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> FingerprintStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: an exception (or a crash) leaves the store as it was before."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        self.db.execute("COMMIT")

    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def files_of(self, label: str) -> dict[str, FileRecord]:
        rows = self.db.execute(
            "SELECT id, label, path, kind, size, mtime_ns, sha256 FROM files WHERE label = ?",
            (label,),
        )
        return {r[2]: FileRecord(*r) for r in rows}

    def set_label(self, label: str, public: bool) -> None:
        """Record a label as company content or public code; a label keeps what it was."""
        row = self.db.execute("SELECT public FROM labels WHERE name = ?", (label,)).fetchone()
        if row is None:
            self.db.execute("INSERT INTO labels (name, public) VALUES (?, ?)", (label, public))
        elif bool(row[0]) != public:
            was = "public (allow-list)" if row[0] else "company content"
            raise FingerprintStoreError(
                f"label '{label}' holds {was}; use another label, or remove it first"
            )

    def add_root(self, label: str, root: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO roots (label, path, added) VALUES (?, ?, ?)",
            (label, root, time.time()),
        )

    def write(self, label: str, files: Iterable[NewFile]) -> None:
        """Insert files, replacing their previous versions (call inside `transaction`).

        (label, path) is unique by construction: the indexer reads the label's files first and
        names the row each new version replaces; a unique index would cost 8 % of the store.
        """
        rows = list(files)
        self.delete(f.replaces for f in rows if f.replaces is not None)
        now = time.time()
        self.db.executemany(
            "INSERT INTO files (label, path, kind, size, mtime_ns, sha256, lines, count, hashes,"
            " indexed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (label, f.path, f.kind, f.size, f.mtime_ns, f.sha256, f.lines, len(f.hashes),
                 f.hashes.astype("<u4").tobytes() + f.tags.tobytes(), now)
                for f in rows
            ],
        )  # fmt: skip

    def touch(self, ids_mtimes: Iterable[tuple[int, int]]) -> None:
        """Record a new modification time for files whose content did not change."""
        self.db.executemany(
            "UPDATE files SET mtime_ns = ? WHERE id = ?", [(m, i) for i, m in ids_mtimes]
        )

    def delete(self, ids: Iterable[int]) -> None:
        self.db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in ids])

    def remove_label(self, label: str) -> int:
        """Forget a label, its roots and its files; the number of files removed."""
        with self.transaction():
            count = self.db.execute("DELETE FROM files WHERE label = ?", (label,)).rowcount
            self.db.execute("DELETE FROM roots WHERE label = ?", (label,))
            self.db.execute("DELETE FROM labels WHERE name = ?", (label,))
        self.db.execute("VACUUM")
        return int(count)

    def labels(self) -> list[LabelInfo]:
        roots: dict[str, list[str]] = {}
        for label, root in self.db.execute("SELECT label, path FROM roots ORDER BY label, path"):
            roots.setdefault(label, []).append(root)
        rows = self.db.execute(
            "SELECT label, count(*), sum(kind = 'code'), sum(lines), sum(size), sum(count),"
            " max(indexed) FROM files GROUP BY label"
        ).fetchall()
        found = {r[0]: r for r in rows}
        public = self._public()
        out = []
        for label in sorted(set(roots) | set(found)):
            r = found.get(label) or (label, 0, 0, 0, 0, 0, 0.0)
            out.append(LabelInfo(label, tuple(roots.get(label, ())), int(r[1]), int(r[2] or 0),
                                 int(r[3] or 0), int(r[4] or 0), int(r[5] or 0),
                                 float(r[6] or 0.0), label in public))  # fmt: skip
        return out

    def _public(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT name FROM labels WHERE public")}

    def load(self) -> tuple[MemoryIndex, dict[int, tuple[str, str, str]]]:
        """Every company fingerprint in memory, less those of public labels, and file id ->
        (label, path, kind)."""
        per_file: list[tuple[int, U32, U8]] = []
        public: list[U32] = []
        files: dict[int, tuple[str, str, str]] = {}
        allow = self._public()
        seen: set[bytes] = set()
        for file_id, label, path, kind, count, blob, digest in self.db.execute(
            "SELECT id, label, path, kind, count, hashes, sha256 FROM files ORDER BY id"
        ):
            hashes = np.frombuffer(blob, dtype="<u4", count=count).astype(np.uint32)
            if label in allow:
                public.append(hashes)
                continue
            if digest in seen:  # a copy adds nothing and must not make its content "common"
                continue
            seen.add(digest)
            files[file_id] = (label, path, kind)
            marks = np.frombuffer(blob, dtype=np.uint8, offset=4 * count, count=count)
            per_file.append((file_id, hashes, marks))
        known = np.unique(np.concatenate(public)) if public else None
        return MemoryIndex(per_file, common_limit(len(files)), known), files


def common_limit(files: int) -> int:
    """Fingerprints found in more files than this are idioms or boilerplate, not content
    (fewer shared ones weigh less where the channel says so; identical copies and near-copies
    count once).
    A tenth of the files: code that a company's many generated clients or plugins share is
    still the company's code, and the order check keeps scattered idioms from matching."""
    return max(COMMON_MIN_FILES, files // 10)
