"""Conversation history: clients resend the whole chat every turn, so each turn scans only its
new text.

Each segment of at least `min_chars` characters is remembered by a keyed 64-bit hash of its text
(the key is random per process, so no one can craft a text that passes for another). Most
segments have no finding: their hashes go into a fixed table allocated once (a direct-mapped
cache of 2**17 slots, 1 MiB: a newcomer takes its slot's place), so remembering them costs no
memory as traffic goes on. Segments with findings keep those findings in a bounded LRU.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from array import array
from collections import OrderedDict
from dataclasses import replace

from dlpproxy.engine import Engine
from dlpproxy.types import Finding, Prompt, ScanResult


class ScanHistory:
    """Which segments were scanned: clean ones in a fixed table, the rest with their findings
    (offsets within the segment) in an LRU of `capacity`."""

    def __init__(self, capacity: int = 20_000, min_chars: int = 64, clean_slots: int = 1 << 17):
        if clean_slots <= 0 or clean_slots & (clean_slots - 1):
            raise ValueError(f"clean_slots must be a power of two, not {clean_slots}")
        self.capacity = capacity
        self.min_chars = min_chars
        self._clean = array("Q", bytes(8 * clean_slots))  # 0 = empty; keys are odd
        self._mask = clean_slots - 1
        self._found: OrderedDict[int, tuple[Finding, ...]] = OrderedDict()
        self._hash_key = os.urandom(16)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    async def scan(self, engine: Engine, prompt: Prompt) -> ScanResult:
        started = time.perf_counter()
        keys = [self._key(s.text) if len(s.text) >= self.min_chars else 0 for s in prompt.segments]
        known: dict[int, tuple[Finding, ...]] = {}
        with self._lock:
            for index, key in enumerate(keys):
                if not key:
                    continue
                if self._clean[key & self._mask] == key:
                    known[index] = ()
                elif key in self._found:
                    known[index] = self._found[key]
                    self._found.move_to_end(key)
        fresh = [i for i in range(len(keys)) if i not in known]
        self.hits += len(known)
        self.misses += len(fresh)
        found: list[Finding] = [replace(f, segment=i) for i, fs in known.items() for f in fs]
        if fresh:
            result = await engine.scan(Prompt(tuple(prompt.segments[i] for i in fresh)))
            per_fresh: dict[int, list[Finding]] = {i: [] for i in fresh}
            for f in result.findings:
                per_fresh[fresh[f.segment]].append(replace(f, segment=fresh[f.segment]))
            found.extend(f for fs in per_fresh.values() for f in fs)
            self._remember(keys, per_fresh)
        found.sort(key=lambda f: (f.segment, f.start, f.end))
        elapsed = (time.perf_counter() - started) * 1000.0
        return ScanResult(tuple(found), elapsed, engine.names)

    def remembered(self) -> int:
        """How many segments are remembered (clean and with findings); counts the table."""
        with self._lock:
            return sum(1 for key in self._clean if key) + len(self._found)

    def _key(self, text: str) -> int:
        data = text.encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(data, digest_size=8, key=self._hash_key).digest()
        return int.from_bytes(digest, "little") | 1

    def _remember(self, keys: list[int], per_fresh: dict[int, list[Finding]]) -> None:
        with self._lock:
            for index, findings in per_fresh.items():
                key = keys[index]
                if not key:
                    continue  # never looked up: short texts are cheaper to scan than to keep
                if not findings:
                    self._clean[key & self._mask] = key
                    continue
                self._found[key] = tuple(replace(f, segment=0) for f in findings)
                self._found.move_to_end(key)
            while len(self._found) > self.capacity:
                self._found.popitem(last=False)
