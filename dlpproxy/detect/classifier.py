"""The ONNX content classifier: source code, meeting notes and data exports in any language.

The model (`models/classifier.onnx`, trained by `dlpproxy train`) takes the UTF-8 bytes of a
window and does its own n-gram hashing, so the host only cuts windows. Long prompts are cut into
overlapping windows; a window whose score for a label passes that label's threshold becomes a
finding with the window's character span (adjacent windows of one label are merged). The model's
sha256 is checked against `models/classifier.json` before it is loaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dlpproxy.detect.batcher import MicroBatcher
from dlpproxy.detect.stacker import Stacker, read_format
from dlpproxy.errors import DetectorError
from dlpproxy.settings import Settings
from dlpproxy.types import Finding

NAME = "classifier"
MANIFEST = "classifier.json"
FORMAT = 1
PAD = -1
# CPU runs are memory-bound: big batches spill the cache and are slower per window than small ones.
DEFAULT_BATCH = {"cpu": 8, "cuda": 128}
STACKER_ENV = "DLPPROXY_CLASSIFIER_STACKER"
SEVERITY = {"source_code": "high", "meeting_notes": "high", "data_export": "high"}


@dataclass(frozen=True, slots=True)
class Manifest:
    """What `models/classifier.json` says about the model file next to it."""

    path: Path
    sha256: str
    labels: tuple[str, ...]
    negative: str
    thresholds: Mapping[str, float]
    max_len: int
    stride: int
    stacker: Path | None = None  # the second stage (`stacker.py`); None: ONNX scores only
    stacker_sha256: str = ""

    @classmethod
    def load(cls, manifest_path: Path) -> Manifest:
        if not manifest_path.is_file():
            raise DetectorError(
                NAME,
                f"{manifest_path}: model manifest missing; run `dlpproxy train` or restore models/",
            )
        try:
            raw = read_format(manifest_path, FORMAT, "format", "dlpproxy train")
            spec = raw["input"]
            stack = raw.get("stacker")
            return cls(
                manifest_path.parent / raw["model"],
                str(raw["sha256"]),
                tuple(raw["labels"]),
                str(raw["negative"]),
                {str(k): float(v) for k, v in raw["thresholds"].items()},
                int(spec["max_len"]),
                int(spec["stride"]),
                manifest_path.parent / stack["file"] if stack else None,
                str(stack["sha256"]) if stack else "",
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DetectorError(
                NAME, f"{manifest_path}: invalid manifest ({type(exc).__name__}: {exc})"
            ) from exc


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def windows(text: str, max_len: int, stride: int) -> list[tuple[int, int, bytes]]:
    """Cut `text` into (char start, char end, UTF-8 bytes) windows of at most `max_len` bytes.

    Windows start every `stride` bytes, moved back to a character boundary, so consecutive
    windows overlap by `max_len - stride` bytes and a pattern cut by one is whole in the next.
    """
    if not text:
        return []
    if len(text) <= max_len:
        data = text.encode("utf-8", "replace")
        if len(data) <= max_len:
            return [(0, len(text), data)]
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    widths = 1 + (points >= 0x80) + (points >= 0x800) + (points >= 0x10000)
    widths[(points >= 0xD800) & (points < 0xE000)] = 1  # lone surrogates encode as "?"
    offsets = np.concatenate([[0], np.cumsum(widths)])
    data = text.encode("utf-8", "replace")
    total = int(offsets[-1])
    out: list[tuple[int, int, bytes]] = []
    begin = 0
    while True:
        c0 = int(np.searchsorted(offsets, begin, side="left"))
        c1 = int(np.searchsorted(offsets, int(offsets[c0]) + max_len, side="right")) - 1
        c1 = max(c1, c0 + 1)
        out.append((c0, c1, data[int(offsets[c0]) : int(offsets[c1])]))
        if offsets[c1] >= total:
            return out
        begin = int(offsets[c0]) + stride


@dataclass(slots=True)
class ContentClassifier:
    """The detector: `detect` (async, micro-batched), `detect_sync`, `detect_batch` (bulk)."""

    manifest: Manifest
    max_batch: int = 0
    max_wait_ms: float = 2.0
    threads: int = 1
    # The second stage runs only when asked for (`stacked=True`, or DLPPROXY_CLASSIFIER_STACKER=on
    # when None): its layout features are Python on the host (~1 ms per 2 KB window, one core),
    # which bounds GPU throughput to the host's cores, and its dev gain (macro F1 0.910 -> 0.920)
    # was chosen on dev (see models/README.md).
    stacked: bool | None = None
    device: str = field(init=False, default="cpu")
    name: str = field(init=False, default=NAME)
    categories: frozenset[str] = field(init=False)
    _session: object = field(init=False, repr=False)
    _stacker: Stacker | None = field(init=False, repr=False)
    _batcher: MicroBatcher[bytes, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.categories = frozenset(
            lb for lb in self.manifest.labels if lb != self.manifest.negative
        )
        self._session, self.device = _open_session(self.manifest, self.threads)
        self._stacker = None
        if self.stacked is None:
            self.stacked = os.environ.get(STACKER_ENV, "").strip().lower() == "on"
        if self.manifest.stacker is not None and self.stacked:
            verified(self.manifest.stacker, self.manifest.stacker_sha256, "stacker file")
            self._stacker = Stacker.load(self.manifest.stacker, self.manifest.labels)
        if self.max_batch <= 0:
            self.max_batch = DEFAULT_BATCH[self.device]
        self._batcher = MicroBatcher(self.predict_windows, self.max_batch, self.max_wait_ms)

    def predict_windows(self, pieces: Sequence[bytes]) -> list[np.ndarray]:
        """Class probabilities of each window, run in batches of similar length."""
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        out: list[np.ndarray] = [np.empty(0)] * len(pieces)
        for at in range(0, len(order), max(self.max_batch, 1)):
            idx = order[at : at + self.max_batch]
            width = max(1, max(len(pieces[i]) for i in idx))
            rows = np.full((len(idx), width), PAD, dtype=np.int32)
            for r, i in enumerate(idx):
                rows[r, : len(pieces[i])] = np.frombuffer(pieces[i], dtype=np.uint8)
            probs = self._session.run(["probs"], {"bytes": rows})[0]  # type: ignore[attr-defined]
            if self._stacker is not None:
                texts = [pieces[i].decode("utf-8", "replace") for i in idx]
                probs = self._stacker.apply(probs, texts)
            for r, i in enumerate(idx):
                out[i] = probs[r]
        return out

    def _findings(
        self, spans: list[tuple[int, int, bytes]], probs: Sequence[np.ndarray]
    ) -> list[Finding]:
        found: list[Finding] = []
        labels = self.manifest.labels
        for (start, end, _), p in zip(spans, probs, strict=True):
            for k, label in enumerate(labels):
                if label == self.manifest.negative or p[k] < self.manifest.thresholds.get(
                    label, 0.5
                ):
                    continue
                last = found[-1] if found else None
                if last is not None and last.type == label and start <= last.end:
                    found[-1] = _finding(last.start, end, label, max(last.score, float(p[k])))
                else:
                    found.append(_finding(start, end, label, float(p[k])))
        return found

    def detect_sync(self, text: str) -> list[Finding]:
        spans = windows(text, self.manifest.max_len, self.manifest.stride)
        return self._findings(spans, self.predict_windows([s[2] for s in spans])) if spans else []

    async def detect(self, text: str) -> list[Finding]:
        spans = windows(text, self.manifest.max_len, self.manifest.stride)
        if not spans:
            return []
        return self._findings(spans, await self._batcher.submit_many([s[2] for s in spans]))

    def detect_batch(self, texts: list[str]) -> list[list[Finding]]:
        per_text = [windows(t, self.manifest.max_len, self.manifest.stride) for t in texts]
        probs = self.predict_windows([s[2] for spans in per_text for s in spans])
        out, at = [], 0
        for spans in per_text:
            out.append(self._findings(spans, probs[at : at + len(spans)]))
            at += len(spans)
        return out

    def close(self) -> None:
        self._batcher.close()


def _finding(start: int, end: int, label: str, score: float) -> Finding:
    return Finding(
        start, end, label, label, NAME, score, SEVERITY.get(label, "medium"), f"{NAME}:{label}"
    )


def verified(path: Path, sha256: str, what: str) -> None:
    """A clear error unless `path` exists and has the sha256 the manifest gives for it."""
    if not path.is_file():
        raise DetectorError(
            NAME, f"{path}: {what} missing; run `dlpproxy train` or restore models/"
        )
    actual = file_sha256(path)
    if actual != sha256:
        raise DetectorError(
            NAME,
            f"{path}: sha256 {actual[:16]}... does not match the manifest's "
            f"{sha256[:16]}...; the file is corrupt or from another training run",
        )


def _open_session(manifest: Manifest, threads: int) -> tuple[object, str]:
    """An onnxruntime session on CUDA when onnxruntime-gpu and a GPU are present, else on CPU."""
    import onnxruntime as ort

    path = manifest.path
    verified(path, manifest.sha256, "model file")
    providers = ["CPUExecutionProvider"]
    if (
        "CUDAExecutionProvider" in ort.get_available_providers()
        and os.environ.get("DLPPROXY_CLASSIFIER_DEVICE", "") != "cpu"
    ):
        preload = getattr(ort, "preload_dlls", None)
        if callable(preload):
            preload()
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:
        raise DetectorError(NAME, f"{path}: onnxruntime cannot load the model ({exc})") from exc
    device = "cuda" if "CUDAExecutionProvider" in session.get_providers() else "cpu"
    return session, device


def build(settings: Settings) -> ContentClassifier:
    """The detector from `settings.models_dir`, with the settings' batching and thresholds."""
    manifest = Manifest.load(Path(settings.models_dir) / MANIFEST)
    if settings.classifier_thresholds:
        thresholds = {**manifest.thresholds, **dict(settings.classifier_thresholds)}
        manifest = replace(manifest, thresholds=thresholds)
    return ContentClassifier(
        manifest,
        max_batch=settings.classifier_max_batch,
        max_wait_ms=settings.classifier_max_wait_ms,
        threads=int(os.environ.get("DLPPROXY_CLASSIFIER_THREADS", "1")),
    )
