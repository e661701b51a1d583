"""Conversation history: clients resend the whole chat every turn, so each turn scans only its
new text. Findings are remembered per segment text (by hash) in a bounded LRU."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import replace

from dlpproxy.engine import Engine
from dlpproxy.types import Finding, Prompt, ScanResult


class ScanHistory:
    """segment hash -> its findings (offsets within the segment), least recently used dropped."""

    def __init__(self, capacity: int = 50_000, min_chars: int = 64):
        self.capacity = capacity
        self.min_chars = min_chars
        self._known: OrderedDict[bytes, tuple[Finding, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    async def scan(self, engine: Engine, prompt: Prompt) -> ScanResult:
        started = time.perf_counter()
        keys = [_key(s.text) for s in prompt.segments]
        known: dict[int, tuple[Finding, ...]] = {}
        with self._lock:
            for index, key in enumerate(keys):
                if len(prompt.segments[index].text) >= self.min_chars and key in self._known:
                    known[index] = self._known[key]
                    self._known.move_to_end(key)
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
            self._remember(keys, per_fresh, prompt)
        found.sort(key=lambda f: (f.segment, f.start, f.end))
        elapsed = (time.perf_counter() - started) * 1000.0
        return ScanResult(tuple(found), elapsed, engine.names)

    def _remember(
        self, keys: list[bytes], per_fresh: dict[int, list[Finding]], prompt: Prompt
    ) -> None:
        with self._lock:
            for index, findings in per_fresh.items():
                if len(prompt.segments[index].text) < self.min_chars:
                    continue  # never looked up: short texts are cheaper to scan than to keep
                self._known[keys[index]] = tuple(replace(f, segment=0) for f in findings)
                self._known.move_to_end(keys[index])
            while len(self._known) > self.capacity:
                self._known.popitem(last=False)


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
