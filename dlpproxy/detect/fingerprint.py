"""The company's own code and documents, recognised by their fingerprints.

The index (`dlpproxy index add`) is loaded into memory on first use and reloaded when the store
changes (checked at most every REFRESH_S seconds). A region of the prompt that shares enough
fingerprints with one indexed file is a finding: `internal_code/indexed_code` for code files,
`internal_document/indexed_document` for documents; `rule` names the label and the file, `score`
is the similarity (the share of the prompt's own fingerprints found in that file). Not in the
default detector set: it needs an index (`--detectors secrets,pii,keywords,fingerprint`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dlpproxy.fingerprint.matcher import Match, MemoryIndex
from dlpproxy.fingerprint.store import FingerprintStore
from dlpproxy.settings import Settings
from dlpproxy.types import INTERNAL_CODE, INTERNAL_DOCUMENT, Finding

REFRESH_S = 2.0
# A region this large (distinct shared fingerprints), or a prompt mostly made of one file, is
# a high-severity finding (the default policy blocks internal code at high); less is medium.
HIGH_MATCHES = 8
HIGH_SIMILARITY = 0.5


class FingerprintDetector:
    """Looks prompts up in the fingerprint index."""

    name = "fingerprint"
    categories = frozenset({INTERNAL_CODE, INTERNAL_DOCUMENT})

    def __init__(self, path: Path, refresh_s: float = REFRESH_S):
        self.store = FingerprintStore(path)  # a missing or foreign store fails here, clearly
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._index: MemoryIndex | None = None
        self._files: dict[int, tuple[str, str, str]] = {}
        self._generation = -1
        self._checked = 0.0

    def _current(self) -> tuple[MemoryIndex, dict[int, tuple[str, str, str]]]:
        now = time.monotonic()
        with self._lock:
            if self._index is None or now - self._checked >= self.refresh_s:
                self._checked = now
                generation = self.store.generation()
                if self._index is None or generation != self._generation:
                    self._index, self._files = self.store.load()
                    self._generation = generation
            return self._index, self._files

    def detect(self, text: str) -> list[Finding]:
        if not text:
            return []
        index, files = self._current()
        return [self._finding(m, files) for m in index.match(text) if m.file_id in files]

    def detect_batch(self, texts: list[str]) -> list[list[Finding]]:
        return [self.detect(t) for t in texts]

    def _finding(self, m: Match, files: dict[int, tuple[str, str, str]]) -> Finding:
        label, path, kind = files[m.file_id]
        high = m.matched >= HIGH_MATCHES or m.similarity >= HIGH_SIMILARITY
        code = kind == "code"
        return Finding(
            m.start,
            m.end,
            "indexed_code" if code else "indexed_document",
            INTERNAL_CODE if code else INTERNAL_DOCUMENT,
            self.name,
            round(m.similarity, 4),
            "high" if high else "medium",
            f"{label}:{path}",
        )


def build(settings: Settings) -> FingerprintDetector:
    """The detector over `settings.fingerprint_db` (a missing index is a clear error)."""
    return FingerprintDetector(settings.fingerprint_db)
