"""`index add`: fingerprint the files under some roots into the store, changed files only.

A file whose size and modification time match the store is not read again; one whose content
hash matches is only re-dated. Files are written in batches, each batch one transaction: an
interruption keeps the batches already written (each file whole) and the next run carries on.
Files that vanished from under an indexed root are removed from the store.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlpproxy.fingerprint.normalise import (
    code_tokens,
    notes_text,
    prose_tokens,
    without_licences,
)
from dlpproxy.fingerprint.sources import (
    QUIET,
    QUIET_GENERATED,
    Skip,
    candidates,
    generated,
    kind_of,
)
from dlpproxy.fingerprint.store import FileRecord, FingerprintStore, NewFile
from dlpproxy.fingerprint.winnow import (
    CODE,
    CODE_LINES,
    PROSE,
    PROSE_LINES,
    U8,
    U32,
    fingerprints,
)
from dlpproxy.providers.files import decode_text, text_of_file

BATCH_FILES = 200
BATCH_BYTES = 16 * 1024 * 1024


def fingerprint_text(text: str, kind: str) -> tuple[U32, U8]:
    """All fingerprints of one file's text and their tags, channel after channel, each in text
    order: code is read as code, its comments and docstrings as prose; documents as prose."""
    if kind != "code":
        words = prose_tokens(without_licences(text))
        parts = [fingerprints(words, PROSE), fingerprints(words, PROSE_LINES)]
    else:
        notes: list[str] = []
        code = code_tokens(text, notes)
        words = prose_tokens(notes_text(notes))
        parts = [
            fingerprints(code, CODE),
            fingerprints(words, PROSE),
            fingerprints(code, CODE_LINES),
            fingerprints(words, PROSE_LINES),
        ]
    return np.concatenate([h for h, _ in parts]), np.concatenate([t for _, t in parts])


@dataclass
class Summary:
    """What one `index add` did."""

    label: str
    seen: int = 0
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    lines: int = 0
    bytes: int = 0
    fingerprints: int = 0
    seconds: float = 0.0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[Skip] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)

    def skip(self, item: Skip) -> None:
        self.skipped[item.reason.split(" (")[0]] += 1
        if item.reason not in QUIET:
            self.problems.append(item)


class Progress:
    """A one-line progress bar on stderr (only when asked, or on a terminal)."""

    def __init__(self, total: int, enabled: bool):
        self.total = max(total, 1)
        self.enabled = enabled
        self.began = time.monotonic()
        self._shown = 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._shown < 0.1):
            return
        self._shown = now
        share = done / self.total
        bar = "#" * int(share * 30)
        print(
            f"\rindexing [{bar:<30}] {done}/{self.total} files {share:4.0%} "
            f"{now - self.began:5.1f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def finish(self) -> None:
        if self.enabled:
            self.update(self.total, force=True)
            print(file=sys.stderr, flush=True)


def index_paths(
    store: FingerprintStore,
    roots: Sequence[Path],
    label: str,
    max_bytes: int,
    progress: bool = False,
    on_batch: Callable[[int], None] | None = None,
    public: bool = False,
) -> Summary:
    """Index `roots` under `label` (`public`: an allow-list of code that is not secret, whose
    fingerprints are subtracted); see the module docstring for what is (re)read."""
    began = time.perf_counter()
    summary = Summary(label)
    store.set_label(label, public)
    known = store.files_of(label)
    paths: list[Path] = []
    resolved_roots = [r.expanduser().resolve() for r in roots]
    for root in resolved_roots:
        for item in candidates(root):
            if isinstance(item, Skip):
                summary.skip(item)
            else:
                paths.append(item)
    bar = Progress(len(paths), progress)
    batch: list[NewFile] = []
    touched: list[tuple[int, int]] = []
    present: set[str] = set()
    pending = 0
    for done, path in enumerate(paths, 1):
        summary.seen += 1
        key = str(path.absolute())
        present.add(key)
        new = _read(path, key, known, max_bytes, summary, touched)
        if new is not None:
            batch.append(new)
            pending += new.size
        if len(batch) >= BATCH_FILES or pending >= BATCH_BYTES:
            _commit(store, label, batch, touched, on_batch)
            batch, touched, pending = [], [], 0
        bar.update(done)
    vanished = [
        r.id
        for p, r in known.items()
        if p not in present and any(_under(p, root) for root in resolved_roots)
    ]
    summary.removed = len(vanished)
    with store.transaction():
        store.write(label, batch)
        store.touch(touched)
        store.delete(vanished)
        for root in resolved_roots:
            store.add_root(label, str(root))
    bar.finish()
    summary.seconds = time.perf_counter() - began
    return summary


def _commit(
    store: FingerprintStore,
    label: str,
    batch: list[NewFile],
    touched: list[tuple[int, int]],
    on_batch: Callable[[int], None] | None,
) -> None:
    with store.transaction():
        store.write(label, batch)
        store.touch(touched)
        if on_batch is not None:
            on_batch(len(batch))


def _read(
    path: Path,
    key: str,
    known: dict[str, FileRecord],
    max_bytes: int,
    summary: Summary,
    touched: list[tuple[int, int]],
) -> NewFile | None:
    """The file fingerprinted, or None (unchanged, or skipped with the reason counted)."""
    try:
        info = path.stat()
        record = known.get(key)
        same = record is not None and record.size == info.st_size
        if same and record is not None and record.mtime_ns == info.st_mtime_ns:
            summary.unchanged += 1
            return None
        if info.st_size > max_bytes:
            summary.skip(Skip(key, f"too large ({info.st_size:,} bytes, limit {max_bytes:,})"))
            return None
        data = path.read_bytes()
    except OSError as exc:
        reason = "symlink loop" if exc.errno == 40 else f"unreadable ({exc.strerror or exc})"
        summary.skip(Skip(key, reason))
        return None
    digest = hashlib.sha256(data).digest()
    if record is not None and record.sha256 == digest:
        touched.append((record.id, info.st_mtime_ns))
        summary.unchanged += 1
        return None
    text = _text(path, data, summary)
    if text is None:
        return None
    kind = kind_of(path) or "document"
    hashes, marks = fingerprint_text(text, kind)
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    summary.indexed += 1
    summary.lines += lines
    summary.bytes += len(data)
    summary.fingerprints += len(hashes)
    replaces = record.id if record is not None else None
    return NewFile(
        key, kind, info.st_size, info.st_mtime_ns, digest, lines, hashes, marks, replaces
    )


def _text(path: Path, data: bytes, summary: Summary) -> str | None:
    key = str(path)
    if generated(path, data):
        summary.skip(Skip(key, QUIET_GENERATED))
        return None
    if path.suffix.lower() in (".pdf", ".docx"):
        found = text_of_file(data, path.name)
        if found.text is None:
            summary.skip(Skip(key, f"no text ({found.reason})"))
        return found.text
    decoded = decode_text(data)
    if decoded is None:
        summary.skip(Skip(key, "binary (not text)"))
        return None
    text, encoding = decoded
    if encoding == "cp1252":
        summary.notes["not UTF-8: read as Windows-1252"] += 1
    return text


def _under(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root).rstrip(os.sep) + os.sep)
