"""The ONNX content classifier: predictions of the shipped model, windows, bad input, model
integrity and the micro-batcher."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from dlpproxy.detect.batcher import MicroBatcher
from dlpproxy.detect.classifier import (
    MANIFEST,
    STACKER_ENV,
    ContentClassifier,
    Manifest,
    build,
    file_sha256,
    windows,
)
from dlpproxy.detect.stacker import FILE as STACK_FILE
from dlpproxy.errors import DetectorError
from dlpproxy.settings import Settings

MODELS = Path(__file__).resolve().parent.parent / "models"

PYTHON_CODE = """def merge_intervals(intervals):
    intervals.sort(key=lambda pair: pair[0])
    merged = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
"""

KOREAN_COMMENTED_CODE = """# 사용자 목록을 정렬하고 중복을 제거한다
def unique_users(users):
    seen = set()
    result = []
    for user in sorted(users, key=lambda u: u["name"]):
        if user["id"] not in seen:  # 이미 본 사용자는 건너뛴다
            seen.add(user["id"])
            result.append(user)
    return result
"""

MINUTES = """Weekly sync - 14 March
Attendees: Mina, Carlos, Priya, Tom
Agenda:
1. Release 2.3 status
   - Carlos: the installer fix landed on Tuesday, QA still testing on Windows.
   - Decision: ship on Friday if QA signs off by Thursday noon.
2. On-call rotation
   - Priya proposed moving handover to Monday mornings; agreed.
Action items:
- Tom: update the release notes draft by Wednesday.
- Mina: book the retro room for next week.
"""

CHINESE_MINUTES = """项目周会纪要（3月14日）
参会人：王强、李娜、张伟
议题一：版本发布进度
- 李娜：安装包问题已修复，测试组仍在验证。
- 结论：若周四中午前测试通过，周五发布。
议题二：值班安排
- 张伟建议把交接改到周一上午，大家同意。
待办事项：
- 王强：周三前完成发布说明初稿。
"""

ORDERS_CSV = """order_id,customer,country,amount,currency,created_at
10231,Hanna Berg,SE,149.90,EUR,2024-03-02 10:14:07
10232,Luis Ortega,MX,89.00,USD,2024-03-02 10:15:44
10233,Aiko Sato,JP,12000,JPY,2024-03-02 10:17:02
10234,Omar Haddad,AE,310.50,USD,2024-03-02 10:21:19
10235,Chen Wei,CN,640.00,CNY,2024-03-02 10:22:51
"""

RIVER = (
    "The river rises in the northern hills and flows south through farmland before reaching "
    "the sea near the old harbour town. "
)


@pytest.fixture(scope="module")
def classifier() -> ContentClassifier:
    return ContentClassifier(Manifest.load(MODELS / MANIFEST), max_batch=8, max_wait_ms=2.0)


@pytest.fixture(scope="module")
def stacked() -> ContentClassifier:
    manifest = Manifest.load(MODELS / MANIFEST)
    return ContentClassifier(manifest, max_batch=8, max_wait_ms=2.0, stacked=True)


@pytest.fixture
def stacker_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STACKER_ENV, "on")


def labels_of(det: ContentClassifier, text: str) -> list[str]:
    return [f.type for f in det.detect_sync(text)]


def copy_models(tmp_path: Path) -> Path:
    for name in ("classifier.json", "classifier.onnx", STACK_FILE):
        shutil.copy(MODELS / name, tmp_path / name)
    return tmp_path


def test_python_function_is_source_code(classifier: ContentClassifier) -> None:
    assert labels_of(classifier, PYTHON_CODE) == ["source_code"]


def test_code_with_korean_comments_is_source_code(classifier: ContentClassifier) -> None:
    assert labels_of(classifier, KOREAN_COMMENTED_CODE) == ["source_code"]


def test_english_minutes_are_meeting_notes(classifier: ContentClassifier) -> None:
    assert labels_of(classifier, MINUTES) == ["meeting_notes"]


def test_chinese_minutes_are_meeting_notes(classifier: ContentClassifier) -> None:
    assert labels_of(classifier, CHINESE_MINUTES) == ["meeting_notes"]


def test_csv_rows_are_data_export(classifier: ContentClassifier) -> None:
    assert labels_of(classifier, ORDERS_CSV) == ["data_export"]


def test_everyday_question_is_not_flagged(classifier: ContentClassifier) -> None:
    question = "Can you suggest three names for a small bakery that sells sourdough bread?"
    assert classifier.detect_sync(question) == []


def test_japanese_question_is_not_flagged(classifier: ContentClassifier) -> None:
    assert (
        classifier.detect_sync("東京から大阪まで新幹線で行くと、だいたい何時間かかりますか？") == []
    )


def test_finding_names_detector_category_and_whole_span(classifier: ContentClassifier) -> None:
    (finding,) = classifier.detect_sync(PYTHON_CODE)
    assert (finding.start, finding.end) == (0, len(PYTHON_CODE))
    assert (finding.detector, finding.category, finding.type) == (
        "classifier",
        "source_code",
        "source_code",
    )
    assert 0.5 <= finding.score <= 1.0


def test_empty_prompt_has_no_findings(classifier: ContentClassifier) -> None:
    assert classifier.detect_sync("") == []


def test_code_in_the_middle_of_a_1mb_prompt_is_found_with_its_span(
    classifier: ContentClassifier,
) -> None:
    prose = RIVER * (500_000 // len(RIVER))
    code = PYTHON_CODE * 3
    text = prose + "\n\n" + code + "\n\n" + prose
    code_at = len(prose) + 2
    found = classifier.detect_sync(text)
    assert [f.type for f in found] == ["source_code"]
    assert found[0].start <= code_at and found[0].end >= code_at + len(code)
    assert found[0].end - found[0].start < 4096


def test_binary_garbage_is_scanned_without_error(classifier: ContentClassifier) -> None:
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(6000)).decode("latin-1")
    found = classifier.detect_sync(garbage)
    assert all(0 <= f.start < f.end <= len(garbage) for f in found)


def test_lone_surrogates_do_not_break_offsets(classifier: ContentClassifier) -> None:
    text = "x\ud800y" * 2000
    spans = windows(text, 2048, 1536)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(f.end <= len(text) for f in classifier.detect_sync(text))


def test_code_inside_japanese_prose_is_source_code(classifier: ContentClassifier) -> None:
    text = (
        "このコードは区間をまとめます。次の関数を見てください。\n\n```python\n"
        + PYTHON_CODE
        + "```\n\n質問があれば教えてください。"
    )
    assert labels_of(classifier, text) == ["source_code"]


def test_prose_inside_code_inside_a_docstring_is_source_code(
    classifier: ContentClassifier,
) -> None:
    example = PYTHON_CODE.replace("\n", "\n    ")
    text = (
        'def render_help():\n    """Return the help page.\n\n    The page explains usage in '
        f'prose and shows an example:\n\n    ```python\n    {example}```\n    """\n'
        "    return HELP_TEXT.format(version=VERSION)\n"
    )
    assert labels_of(classifier, text) == ["source_code"]


def test_windows_overlap_and_map_back_to_the_text() -> None:
    text = "日本語のテキストと English words. " * 300
    spans = windows(text, 2048, 1536)
    assert all(text[a:b].encode() == data and len(data) <= 2048 for a, b, data in spans)
    assert all(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))
    assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_detect_batch_matches_detect_sync(classifier: ContentClassifier) -> None:
    texts = [PYTHON_CODE, "", MINUTES, ORDERS_CSV, "hello"]
    assert classifier.detect_batch(texts) == [classifier.detect_sync(t) for t in texts]


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    copy_models(tmp_path)
    (tmp_path / "classifier.onnx").unlink()
    with pytest.raises(DetectorError, match="model file missing"):
        build(Settings(models_dir=tmp_path))


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="manifest missing"):
        build(Settings(models_dir=tmp_path))


def test_truncated_model_fails_the_sha256_check(tmp_path: Path) -> None:
    copy_models(tmp_path)
    model = tmp_path / "classifier.onnx"
    model.write_bytes(model.read_bytes()[:100_000])
    with pytest.raises(DetectorError, match="does not match the manifest"):
        build(Settings(models_dir=tmp_path))


def test_manifest_of_another_format_version_is_refused(tmp_path: Path) -> None:
    copy_models(tmp_path)
    path = tmp_path / "classifier.json"
    manifest = json.loads(path.read_text())
    manifest["format"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(DetectorError, match="format 99"):
        build(Settings(models_dir=tmp_path))


def test_corrupt_manifest_is_a_clear_error(tmp_path: Path) -> None:
    copy_models(tmp_path)
    (tmp_path / "classifier.json").write_text('{"format": 1, "model": ')
    with pytest.raises(DetectorError, match="invalid manifest"):
        build(Settings(models_dir=tmp_path))


def rewrite_stacker(models: Path, change: str, value: object) -> None:
    """Change one field of the stacker file and give the manifest its new sha256."""
    path = models / STACK_FILE
    raw = json.loads(path.read_text())
    raw[change] = value
    path.write_text(json.dumps(raw))
    manifest_path = models / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["stacker"]["sha256"] = file_sha256(path)
    manifest_path.write_text(json.dumps(manifest))


def test_shipped_manifest_names_a_stacker_that_runs_only_when_asked(
    classifier: ContentClassifier, stacked: ContentClassifier
) -> None:
    assert classifier.manifest.stacker == MODELS / STACK_FILE
    assert classifier._stacker is None  # off by default: ONNX scores alone
    assert stacked._stacker is not None


def test_stacker_is_switched_on_by_the_environment(stacker_on: None) -> None:
    assert build(Settings())._stacker is not None


def test_missing_stacker_file_is_a_clear_error(tmp_path: Path, stacker_on: None) -> None:
    copy_models(tmp_path)
    (tmp_path / STACK_FILE).unlink()
    with pytest.raises(DetectorError, match="stacker file missing"):
        build(Settings(models_dir=tmp_path))


def test_truncated_stacker_fails_the_sha256_check(tmp_path: Path, stacker_on: None) -> None:
    copy_models(tmp_path)
    path = tmp_path / STACK_FILE
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DetectorError, match="does not match the manifest"):
        build(Settings(models_dir=tmp_path))


def test_stacker_of_another_format_version_is_refused(tmp_path: Path, stacker_on: None) -> None:
    rewrite_stacker(copy_models(tmp_path), "format", 99)
    with pytest.raises(DetectorError, match="stacker format 99"):
        build(Settings(models_dir=tmp_path))


def test_stacker_fitted_on_other_features_is_refused(tmp_path: Path, stacker_on: None) -> None:
    models = copy_models(tmp_path)
    names = json.loads((models / STACK_FILE).read_text())["features"]
    rewrite_stacker(models, "features", names[:-1])
    with pytest.raises(DetectorError, match="other features or labels"):
        build(Settings(models_dir=tmp_path))


def test_stacker_with_a_bad_weight_table_is_a_clear_error(tmp_path: Path, stacker_on: None) -> None:
    rewrite_stacker(copy_models(tmp_path), "coef", [[1.0, 2.0]])
    with pytest.raises(DetectorError, match="wrong shape"):
        build(Settings(models_dir=tmp_path))


def test_manifest_without_a_stacker_uses_the_onnx_scores_alone(
    tmp_path: Path, stacker_on: None
) -> None:
    models = copy_models(tmp_path)
    manifest = json.loads((models / MANIFEST).read_text())
    del manifest["stacker"]
    (models / MANIFEST).write_text(json.dumps(manifest))
    plain = build(Settings(models_dir=models))
    assert plain._stacker is None
    assert labels_of(plain, PYTHON_CODE) == ["source_code"]


def test_stacker_is_not_read_unless_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = copy_models(tmp_path)
    (models / STACK_FILE).write_text("not even json")
    monkeypatch.setenv(STACKER_ENV, "off")
    det = build(Settings(models_dir=models))
    assert det._stacker is None
    monkeypatch.delenv(STACKER_ENV)
    assert build(Settings(models_dir=models))._stacker is None
    assert labels_of(det, ORDERS_CSV) == ["data_export"]


def test_stacker_changes_the_onnx_scores(stacked: ContentClassifier) -> None:
    window = PYTHON_CODE.encode()
    classifier = stacked
    stacked_probs = classifier.predict_windows([window])[0]
    raw = classifier._session.run(  # type: ignore[attr-defined]
        ["probs"], {"bytes": np.frombuffer(window, np.uint8).astype(np.int32)[None]}
    )[0][0]
    assert stacked_probs.shape == raw.shape and abs(float(stacked_probs.sum()) - 1.0) < 1e-5
    assert not np.allclose(stacked_probs, raw)


def test_device_is_reported(classifier: ContentClassifier) -> None:
    assert classifier.device in ("cpu", "cuda")


def test_more_concurrent_callers_than_the_batch_size_all_get_their_own_answer(
    classifier: ContentClassifier,
) -> None:
    texts = [PYTHON_CODE, MINUTES, ORDERS_CSV, "What is the capital of Peru?"] * 10

    async def scan_all() -> list[list[str]]:
        results = await asyncio.gather(*(classifier.detect(t) for t in texts))
        return [[f.type for f in r] for r in results]

    before = classifier._batcher.batches
    got = asyncio.run(scan_all())
    assert got == [labels_of(classifier, t) for t in texts]
    assert classifier._batcher.batches - before >= len(texts) // classifier.max_batch


def test_batcher_groups_concurrent_items_into_batches() -> None:
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return [i * 2 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=4, max_wait_ms=50)

    async def submit() -> list[list[int]]:
        return await asyncio.gather(*(batcher.submit_many([i]) for i in range(10)))

    assert asyncio.run(submit()) == [[i * 2] for i in range(10)]
    assert sizes == [4, 4, 2]


def test_batcher_hands_a_model_failure_to_every_waiting_caller() -> None:
    def run(items: list[int]) -> list[int]:
        raise RuntimeError("CUDA out of memory")

    batcher: MicroBatcher[int, int] = MicroBatcher(run, max_batch=8, max_wait_ms=1)

    async def submit() -> list[object]:
        calls = (batcher.submit_many([i]) for i in range(3))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(submit())
    assert [str(r) for r in results] == ["CUDA out of memory"] * 3


def test_sync_detect_from_several_threads_gives_the_same_answers(
    classifier: ContentClassifier,
) -> None:
    expected = labels_of(classifier, MINUTES)
    seen: list[list[str]] = []

    def worker() -> None:
        seen.append(labels_of(classifier, MINUTES))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [expected] * 6


def test_settings_thresholds_override_the_manifest() -> None:
    settings = Settings(models_dir=MODELS, classifier_thresholds=(("source_code", 0.999),))
    strict = build(settings)
    assert strict.manifest.thresholds["source_code"] == 0.999
    assert strict.detect_sync(PYTHON_CODE) == []


def test_batch_size_follows_the_device_when_not_set() -> None:
    det = build(Settings(models_dir=MODELS))
    assert det.max_batch == {"cpu": 8, "cuda": 128}[det.device]


def test_engine_scans_fifty_concurrent_prompts_through_the_batcher() -> None:
    from dlpproxy.engine import Engine

    texts = [PYTHON_CODE, MINUTES, ORDERS_CSV, "Where is the nearest train station?"] * 13

    async def scan_all(engine: Engine) -> list[set[str]]:
        results = await asyncio.gather(*(engine.scan(t) for t in texts[:50]))
        return [set(r.categories) for r in results]

    with Engine(Settings(models_dir=MODELS, detectors=("classifier",))) as engine:
        got = asyncio.run(scan_all(engine))
    expected = [{"source_code"}, {"meeting_notes"}, {"data_export"}, set()] * 13
    assert got == expected[:50]


def test_engine_scan_sync_uses_the_classifier() -> None:
    from dlpproxy.engine import Engine

    with Engine(Settings(models_dir=MODELS, detectors=("classifier",))) as engine:
        result = engine.scan_sync(ORDERS_CSV)
    assert [(f.category, f.detector) for f in result.findings] == [("data_export", "classifier")]
