"""The engine: runs detectors side by side, maps views back, merges overlaps, keeps its budget."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time

import pytest

from dlpproxy.engine import Engine, merge
from dlpproxy.errors import DetectorError, ScanTimeout
from dlpproxy.settings import Settings
from dlpproxy.types import PII, SECRET, Finding, Prompt, Segment

KEY = "AKIAZ7QRST2VWX3YB4CD"


class RegexDetector:
    """A minimal real detector: every match of a regex is a finding."""

    def __init__(self, name: str, pattern: str, category: str = SECRET, delay: float = 0.0):
        self.name = name
        self.categories = frozenset({category})
        self.category = category
        self.pattern = re.compile(pattern)
        self.delay = delay
        self.calls = 0

    def detect(self, text: str) -> list[Finding]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return [
            Finding(m.start(), m.end(), self.name, self.category, self.name, 1.0)
            for m in self.pattern.finditer(text)
        ]


class AsyncDetector(RegexDetector):
    async def detect(self, text: str) -> list[Finding]:  # type: ignore[override]
        await asyncio.sleep(self.delay)
        return RegexDetector.detect(self, text)


class BrokenDetector(RegexDetector):
    def detect(self, text: str) -> list[Finding]:
        raise ValueError("model file truncated")


def aws() -> RegexDetector:
    return RegexDetector("aws", r"AKIA[A-Z2-7]{16}")


def engine_of(*detectors: object, **settings: object) -> Engine:
    return Engine(Settings(**settings), detectors)  # type: ignore[arg-type]


def test_scan_sync_finds_with_exact_offsets() -> None:
    text = f"이 키를 써: {KEY}"
    with engine_of(aws()) as engine:
        result = engine.scan_sync(text)
    assert [(f.start, f.end) for f in result.findings] == [(8, 28)]
    assert text[8:28] == KEY


def test_async_scan_runs_sync_and_coroutine_detectors() -> None:
    email = AsyncDetector("email", r"\w+@\w+\.com", PII)
    with engine_of(aws(), email) as engine:
        result = asyncio.run(engine.scan(f"{KEY} mail bob@corp.com"))
    assert sorted(f.type for f in result.findings) == ["aws", "email"]
    assert result.detectors == ("aws", "email")


def test_findings_carry_their_segment_index() -> None:
    prompt = Prompt((Segment("clean", "messages[0]"), Segment(f"k={KEY}", "messages[1]")))
    with engine_of(aws()) as engine:
        result = engine.scan_sync(prompt)
    assert [(f.segment, f.start) for f in result.findings] == [(1, 2)]


def test_zero_width_split_key_is_found_and_spans_the_original() -> None:
    hidden = "AKIA\u200bZ7QRST2VWX3YB4CD"
    text = f"key {hidden}."
    with engine_of(aws()) as engine:
        (finding,) = engine.scan_sync(text).findings
    assert text[finding.start : finding.end] == hidden
    assert finding.via == "normalised"


def test_base64_wrapped_key_is_found_via_base64() -> None:
    blob = base64.b64encode(f"aws_access_key_id={KEY}\n".encode()).decode()
    text = f"export CFG={blob}"
    with engine_of(aws()) as engine:
        (finding,) = engine.scan_sync(text).findings
    assert (finding.start, finding.end, finding.via) == (11, 11 + len(blob), "base64")


def test_detectors_can_opt_out_of_decoded_views() -> None:
    det = aws()
    det.scans_decoded = False  # type: ignore[attr-defined]
    blob = base64.b64encode(f"aws_access_key_id={KEY}\n".encode()).decode()
    with engine_of(det) as engine:
        assert engine.scan_sync(f"CFG={blob}").findings == ()


def test_time_budget_raises_scan_timeout_naming_the_slow_detector() -> None:
    slow = RegexDetector("slow", "x", delay=0.5)
    with engine_of(aws(), slow, time_budget_ms=50) as engine, pytest.raises(ScanTimeout) as caught:
        asyncio.run(engine.scan("text"))
    assert caught.value.pending == ["slow"]
    assert "50 ms" in str(caught.value)


def test_a_failing_detector_is_a_detector_error_naming_it() -> None:
    with engine_of(BrokenDetector("model", "x")) as engine:
        with pytest.raises(
            DetectorError, match="detector 'model': ValueError: model file truncated"
        ):
            engine.scan_sync("text")
        with pytest.raises(DetectorError):
            asyncio.run(engine.scan("text"))


def test_event_loop_stays_responsive_while_detectors_run() -> None:
    slow = RegexDetector("slow", "x", delay=0.3)

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await engine.scan("x")
        task.cancel()
        return ticks

    with engine_of(slow) as engine:
        assert asyncio.run(main()) >= 10


def test_scan_many_matches_scan_sync_record_by_record() -> None:
    texts = [f"a {KEY}", "clean", "", f"{KEY} {KEY}", "b" * 300]
    with engine_of(aws(), RegexDetector("bees", "b{3}", PII)) as engine:
        bulk = [r.findings for r in engine.scan_many(texts)]
        one_by_one = [engine.scan_sync(t).findings for t in texts]
    assert bulk == one_by_one


def test_empty_prompt_has_no_findings() -> None:
    with engine_of(aws()) as engine:
        assert engine.scan_sync("").findings == ()


def test_merge_keeps_the_best_finding_widened_to_the_cluster() -> None:
    generic = Finding(5, 30, "generic_password", SECRET, "secrets", 0.6, "medium")
    specific = Finding(10, 30, "aws_access_key", SECRET, "secrets", 1.0, "critical")
    (merged,) = merge([generic, specific])
    assert (merged.type, merged.start, merged.end) == ("aws_access_key", 5, 30)


def test_merge_keeps_different_categories_apart() -> None:
    a = Finding(0, 10, "email", PII, "pii", 0.9)
    b = Finding(0, 10, "token", SECRET, "secrets", 0.9)
    assert len(merge([a, b])) == 2


def test_merge_keeps_disjoint_findings_apart() -> None:
    a = Finding(0, 5, "x", SECRET, "d", 1.0)
    b = Finding(5, 9, "y", SECRET, "d", 1.0)
    assert len(merge([a, b])) == 2


def test_latency_of_each_detector_is_kept_for_the_heartbeat() -> None:
    slow = RegexDetector("slow", r"zzz", delay=0.02)
    email = AsyncDetector("email", r"\w+@\w+\.com", PII)
    with engine_of(aws(), slow, email) as engine:
        assert engine.latency_ms() == {}
        for _ in range(5):
            asyncio.run(engine.scan(f"{KEY} mail bob@corp.com"))
        timing = engine.latency_ms()
    assert set(timing) == {"aws", "slow", "email"}
    assert all(t["n"] == 5 for t in timing.values())
    assert timing["slow"]["p50"] >= 20.0 > timing["aws"]["p50"]


class QuickDetector(RegexDetector):
    """A detector with a quick path: `quick` answers unless the text holds `heavy`, which needs
    `detect`. It records the thread each path ran on."""

    def __init__(self, name: str, pattern: str, heavy: str = "\x00"):
        super().__init__(name, pattern)
        self.heavy = heavy
        self.threads: list[tuple[str, str]] = []

    def quick(self, text: str) -> list[Finding] | None:
        self.threads.append(("quick", threading.current_thread().name))
        return None if self.heavy in text else RegexDetector.detect(self, text)

    def detect(self, text: str) -> list[Finding]:
        self.threads.append(("detect", threading.current_thread().name))
        return RegexDetector.detect(self, text)


def test_small_prompts_take_the_quick_path_on_the_event_loop() -> None:
    det = QuickDetector("aws", r"AKIA[A-Z2-7]{16}")
    with engine_of(det) as engine:
        result = asyncio.run(engine.scan(f"key {KEY}"))
        timing = engine.latency_ms()
    assert [f.type for f in result.findings] == ["aws"]
    assert det.threads == [("quick", "MainThread")]  # no thread hand-off, no `detect`
    assert timing["aws"]["n"] == 1


def test_a_text_that_needs_the_heavy_path_goes_to_the_pool() -> None:
    det = QuickDetector("aws", r"AKIA[A-Z2-7]{16}", heavy="presidio")
    with engine_of(det) as engine:
        result = asyncio.run(engine.scan(f"presidio please: {KEY}"))
    assert [f.type for f in result.findings] == ["aws"]
    assert det.threads[0] == ("quick", "MainThread")
    assert det.threads[1][0] == "detect" and det.threads[1][1].startswith("dlp-detect")


def test_prompts_over_the_inline_limit_go_to_the_pool_whole() -> None:
    det = QuickDetector("aws", r"AKIA[A-Z2-7]{16}")
    with engine_of(det, inline_max_chars=100) as engine:
        result = asyncio.run(engine.scan("x" * 200 + KEY))
    assert [(f.start, f.type) for f in result.findings] == [(200, "aws")]
    assert [path for path, _ in det.threads] == ["detect"]
    assert det.threads[0][1].startswith("dlp-detect")


def test_a_failing_quick_path_is_a_detector_error_naming_it() -> None:
    class BrokenQuick(QuickDetector):
        def quick(self, text: str) -> list[Finding] | None:
            raise KeyError("rule table")

    with (
        engine_of(BrokenQuick("rules", "x")) as engine,
        pytest.raises(DetectorError, match="detector 'rules': KeyError"),
    ):
        asyncio.run(engine.scan("text"))
