"""The engine: runs the detectors on a prompt, merges what they find, keeps to a time budget.

One engine serves every entry point (proxy addon, gateway, `dlpproxy scan`). On small prompts the
detectors' quick paths (linear-time scanners, pii's prefilter, presidio on short texts) run on
the event loop, where a thread hand-off would cost more than the work; heavy work (presidio on
longer texts, large prompts) runs in a thread pool so the proxy's event loop never blocks;
coroutine detectors (the classifier's micro-batcher) are awaited. Each text is also read through
its normalised and decoded views (`dlpproxy.detect.views`) and the findings are mapped back to
the original offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from dlpproxy.detect import build_detector
from dlpproxy.detect.base import Detector
from dlpproxy.detect.views import View, decoded, normalised
from dlpproxy.errors import DetectorError, DlpError, ScanTimeout
from dlpproxy.settings import Settings
from dlpproxy.types import SEVERITY_RANK, Finding, Prompt, ScanResult

BULK_BATCH = 256
LATENCY_WINDOW = 500  # scans kept per detector for latency_ms


class Engine:
    """Scans prompts with a fixed set of detectors."""

    def __init__(
        self, settings: Settings | None = None, detectors: Sequence[Detector] | None = None
    ):
        self.settings = settings or Settings()
        if detectors is None:
            detectors = [build_detector(name, self.settings) for name in self.settings.detectors]
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="dlp-detect")
        self._own_loop: asyncio.AbstractEventLoop | None = None
        # the latest per-detector times of `scan` (ms per prompt), for the proxy's heartbeat
        self._times: dict[str, deque[float]] = {d.name: deque(maxlen=LATENCY_WINDOW)
                                                for d in self.detectors}  # fmt: skip

    def latency_ms(self) -> dict[str, dict[str, float]]:
        """p50/p99 of each detector over its latest scans (detectors that ran at least once)."""
        out: dict[str, dict[str, float]] = {}
        for name, times in self._times.items():
            ordered = sorted(times)
            if ordered:
                p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
                out[name] = {"p50": round(ordered[len(ordered) // 2], 3), "p99": round(p99, 3),
                             "n": len(ordered)}  # fmt: skip
        return out

    @classmethod
    def from_names(cls, names: Sequence[str], settings: Settings | None = None) -> Engine:
        base = settings or Settings()
        return cls(base.with_detectors(tuple(names)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.detectors)

    async def scan(self, prompt: Prompt | str) -> ScanResult:
        """Scan every segment of `prompt`; ScanTimeout when over the budget (fail closed on it)."""
        prompt = Prompt.of_text(prompt) if isinstance(prompt, str) else prompt
        started = time.perf_counter()
        views = [self._views(seg.text) for seg in prompt.segments]
        flat = [view for per_segment in views for view in per_segment]
        loop = asyncio.get_running_loop()
        # Plain detectors run one after the other in ONE pool job (one thread hand-off per prompt,
        # not one per detector: they hold the GIL anyway); coroutine detectors are awaited.
        plain = [d for d in self.detectors if not inspect.iscoroutinefunction(d.detect)]
        per_detector: dict[str, list[list[Finding]]] = {}
        if sum(len(view.text) for view in flat) <= self.settings.inline_max_chars:
            # Small prompts: the quick paths run here (DESIGN: fast detectors inline).
            pooled = []
            for det in plain:
                quick = self._run_quick(det, _texts(det, flat))
                if quick is None:
                    pooled.append(det)
                else:
                    per_detector[det.name] = quick
            plain = pooled
        tasks: dict[asyncio.Future[Any], tuple[str, ...]] = {}
        finished: list[str] = []  # plain detectors that are done, to name the late ones
        if plain:
            job = loop.run_in_executor(self._pool, self._run_plain, plain, flat, finished)
            tasks[asyncio.ensure_future(job)] = tuple(d.name for d in plain)
        for det in self.detectors:
            if det not in plain and det.name not in per_detector:
                coro = self._run_async(det, _texts(det, flat), loop)
                tasks[asyncio.ensure_future(coro)] = (det.name,)
        budget = self.settings.time_budget_ms / 1000.0
        done: set[asyncio.Future[Any]] = set()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=budget)
            if pending:
                for late in pending:
                    late.cancel()
                late_names = sorted(n for f in pending for n in tasks[f] if n not in finished)
                raise ScanTimeout(self.settings.time_budget_ms, late_names)
        for future in done:
            result = future.result()
            per_detector.update(result if isinstance(result, dict) else {tasks[future][0]: result})
        findings = self._collect(views, per_detector)
        elapsed = (time.perf_counter() - started) * 1000.0
        return ScanResult(findings, elapsed, self.names)

    def scan_sync(self, prompt: Prompt | str) -> ScanResult:
        """Scan in the calling thread, detector after detector (CLI, benchmarks). No time budget."""
        prompt = Prompt.of_text(prompt) if isinstance(prompt, str) else prompt
        started = time.perf_counter()
        views = [self._views(seg.text) for seg in prompt.segments]
        per_detector = self._run_all_sync([view for per_segment in views for view in per_segment])
        findings = self._collect(views, per_detector)
        return ScanResult(findings, (time.perf_counter() - started) * 1000.0, self.names)

    def scan_many(self, texts: Iterable[str]) -> Iterator[ScanResult]:
        """Scan many texts in batches (detectors with `detect_batch` get whole batches)."""
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) >= BULK_BATCH:
                yield from self._scan_batch(batch)
                batch = []
        if batch:
            yield from self._scan_batch(batch)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._own_loop is not None:
            self._own_loop.close()
            self._own_loop = None
        for det in self.detectors:
            closer = getattr(det, "close", None)
            if callable(closer):
                closer()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scan_batch(self, texts: list[str]) -> list[ScanResult]:
        started = time.perf_counter()
        views = [self._views(text) for text in texts]
        per_detector = self._run_all_sync([view for per_text in views for view in per_text])
        # Re-split the flat results per text: _collect expects segments of one prompt.
        results: list[ScanResult] = []
        cursors = dict.fromkeys(per_detector, 0)
        for per_text in views:
            own: dict[str, list[list[Finding]]] = {}
            for det in self.detectors:
                n = sum(1 for v in per_text if _sees(det, v))
                at = cursors[det.name]
                own[det.name] = per_detector[det.name][at : at + n]
                cursors[det.name] = at + n
            findings = self._collect([per_text], own)
            results.append(ScanResult(findings, 0.0, self.names))
        each = (time.perf_counter() - started) * 1000.0 / max(len(texts), 1)
        return [ScanResult(r.findings, each, r.detectors) for r in results]

    def _views(self, text: str) -> list[View]:
        """The views a segment is scanned through: itself (or its normalised form) and blobs."""
        norm = normalised(text)
        views = [norm if norm is not None else View(text, "", ())]
        views.extend(decoded(text, self.settings.decode_depth))
        return views

    def _collect(
        self, views: list[list[View]], per_detector: dict[str, list[list[Finding]]]
    ) -> tuple[Finding, ...]:
        """Map each detector's findings back to segment offsets, then merge overlaps."""
        found: list[Finding] = []
        for det in self.detectors:
            results = iter(per_detector[det.name])
            for segment, seg_views in enumerate(views):
                for view in seg_views:
                    if not _sees(det, view):
                        continue
                    for f in next(results):
                        start, end, via = view.to_original(f.start, f.end)
                        found.append(_moved(f, start, end, segment, via))
        return merge(found)

    def _run_all_sync(self, flat: list[View]) -> dict[str, list[list[Finding]]]:
        """Every detector, one after the other, on the views it scans."""
        return self._run_plain(self.detectors, flat)

    def _run_plain(
        self, detectors: Sequence[Detector], flat: list[View], finished: list[str] | None = None
    ) -> dict[str, list[list[Finding]]]:
        out: dict[str, list[list[Finding]]] = {}
        for det in detectors:
            started = time.perf_counter()
            out[det.name] = self._run_sync(det, _texts(det, flat))
            if finished is not None:
                finished.append(det.name)
                self._times[det.name].append((time.perf_counter() - started) * 1000.0)
        return out

    def _run_quick(self, det: Detector, texts: list[str]) -> list[list[Finding]] | None:
        """`det.quick` on every text, or None when it has none or a text needs `detect`."""
        quick = getattr(det, "quick", None)
        if not callable(quick):
            return None
        started = time.perf_counter()
        results: list[list[Finding]] = []
        with _blamed(det):
            for text in texts:
                found = quick(text)
                if found is None:
                    return None
                results.append(list(found))
        self._times[det.name].append((time.perf_counter() - started) * 1000.0)
        return results

    def _run_sync(self, det: Detector, texts: list[str]) -> list[list[Finding]]:
        with _blamed(det):
            batcher = getattr(det, "detect_batch", None)
            if callable(batcher) and len(texts) > 1:
                return list(batcher(texts))
            results: list[list[Finding]] = []
            for text in texts:
                out = det.detect(text)
                if inspect.isawaitable(out):
                    out = self._loop().run_until_complete(_awaited(out))
                results.append(list(out))
            return results

    async def _run_async(
        self, det: Detector, texts: list[str], loop: asyncio.AbstractEventLoop
    ) -> list[list[Finding]]:
        if inspect.iscoroutinefunction(det.detect):
            started = time.perf_counter()
            with _blamed(det):
                outs = await asyncio.gather(*(_awaited(det.detect(t)) for t in texts))
            self._times[det.name].append((time.perf_counter() - started) * 1000.0)
            return [list(o) for o in outs]
        return await loop.run_in_executor(self._pool, self._run_sync, det, texts)

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._own_loop is None:
            self._own_loop = asyncio.new_event_loop()
        return self._own_loop


@contextlib.contextmanager
def _blamed(det: Detector) -> Iterator[None]:
    """A detector's own failure as a DetectorError naming it; our DlpErrors pass as they are."""
    try:
        yield
    except DlpError:
        raise
    except Exception as exc:
        raise DetectorError(det.name, f"{type(exc).__name__}: {exc}") from exc


async def _awaited(value: Any) -> list[Finding]:
    return list(await value)


def _sees(det: Detector, view: View) -> bool:
    """Whether `det` scans `view`: decoded blobs go only to detectors that opt in (the default)."""
    return view.positions is not None or bool(getattr(det, "scans_decoded", True))


def _texts(det: Detector, flat: list[View]) -> list[str]:
    return [v.text for v in flat if _sees(det, v)]


def _moved(f: Finding, start: int, end: int, segment: int, via: str) -> Finding:
    return replace(f, start=start, end=end, segment=segment, via=via or f.via)


def _rank(f: Finding) -> tuple[int, float, int, int]:
    direct = 1 if not f.via else 0
    return (SEVERITY_RANK.get(f.severity, 1), f.score, direct, f.end - f.start)


def merge(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """One finding per overlapping cluster of the same category and segment.

    The cluster keeps its best member (severity, then score, then seen directly, then length),
    widened to the cluster's whole span so a redaction covers everything that was found.
    """
    ordered = sorted(findings, key=lambda f: (f.segment, f.category, f.start, -f.end))
    merged: list[Finding] = []
    cluster: list[Finding] = []
    for f in ordered:
        if cluster and (
            f.segment != cluster[0].segment
            or f.category != cluster[0].category
            or f.start >= max(c.end for c in cluster)
        ):
            merged.append(_best(cluster))
            cluster = []
        cluster.append(f)
    if cluster:
        merged.append(_best(cluster))
    merged.sort(key=lambda f: (f.segment, f.start, f.end, f.category))
    return tuple(merged)


def _best(cluster: list[Finding]) -> Finding:
    best = max(cluster, key=_rank)
    start = min(c.start for c in cluster)
    end = max(c.end for c in cluster)
    if (start, end) == (best.start, best.end):
        return best
    return _moved(best, start, end, best.segment, best.via)
