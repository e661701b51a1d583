"""Fitting the classifier's second stage (`detect/stacker.py`) on scores of the training records.

Two ways to get those scores. `folds` 0: the shipped ONNX model's own scores; it has seen every
record, so they are confident and the regression mostly learns where the layout features should
overrule it. `folds` N >= 2: out of fold; the training owners (GitHub organisations, as dev is
split from train) are cut into N folds with similar label counts, a surrogate model trained on
the other folds' owners scores each fold's records, and the regression learns how far the n-gram
model holds on organisations it has not seen. On this corpus every owner fold removes most of a
label's sources, so the surrogates are far weaker than the shipped model and the out-of-fold
stage leans on the features too much (measured in models/README.md).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlpproxy.detect.stacker import FILE, STACK_FORMAT, Stacker, model_inputs
from dlpproxy.train.corpus import Record
from dlpproxy.train.reformat import reformat_exports

if TYPE_CHECKING:
    from dlpproxy.detect.classifier import Manifest

FOLDS = 4


def owner(record: Record) -> str:
    """The GitHub owner of the record's source (`owner/repo@commit:path`), else the source."""
    return record.source.split("/", 1)[0]


def owner_folds(
    records: Sequence[Record], labels: Sequence[str], folds: int = FOLDS
) -> dict[str, int]:
    """Owners in `folds` folds with similar label counts: largest owners first, each into the
    fold whose fullest label (relative to an even share) stays lowest."""
    per: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(labels)))
    for r in records:
        per[owner(r)][labels.index(r.label)] += 1
    share = np.maximum(sum(per.values()) / folds, 1.0)
    totals = [np.zeros(len(labels)) for _ in range(folds)]
    assign: dict[str, int] = {}
    for name, counts in sorted(per.items(), key=lambda kv: (-kv[1].sum(), kv[0])):
        k = min(range(folds), key=lambda k: (float(((totals[k] + counts) / share).max()), k))
        totals[k] += counts
        assign[name] = k
    return assign


def train_fold_models(
    records: Sequence[Record],
    labels: list[str],
    workdir: Path,
    epochs: int,
    max_len: int,
    seed: int = 0,
    folds: int = FOLDS,
) -> list[Path]:
    """One surrogate ONNX model per fold, trained on the other fold's owners (needs torch)."""
    import onnx

    from dlpproxy.train.features import hash_spec
    from dlpproxy.train.fit import FitConfig, fit
    from dlpproxy.train.graph import build_model

    assign = owner_folds(records, labels, folds)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "folds.json").write_text(json.dumps(assign, indent=1), encoding="utf-8")
    paths = []
    for k in range(folds):
        train = [r for r in records if assign[owner(r)] != k]
        train += reformat_exports(train, seed)
        cfg = FitConfig(epochs=epochs, max_len=max_len, seed=seed)
        weights = fit(train, labels, hash_spec(), cfg)
        path = workdir / f"fold{k}.onnx"
        onnx.save(build_model(weights, hash_spec(), labels), str(path))
        print(f"fold {k}: trained on {len(train)} records -> {path}", file=sys.stderr)
        paths.append(path)
    return paths


def first_windows(records: Sequence[Record], max_len: int, stride: int) -> list[bytes]:
    """The first inference window of each record (most records fit in one)."""
    from dlpproxy.detect.classifier import windows

    return [(windows(r.text, max_len, stride) or [(0, 0, b"")])[0][2] for r in records]


def out_of_fold_scores(
    records: Sequence[Record],
    labels: list[str],
    fold_models: Sequence[Path],
    assign: dict[str, int],
    max_len: int,
    stride: int,
) -> np.ndarray:
    """Each record's first-window probabilities from the surrogate that did not train on it."""
    from dlpproxy.detect.classifier import ContentClassifier, Manifest, file_sha256

    pieces = first_windows(records, max_len, stride)
    out = np.zeros((len(records), len(labels)), dtype=np.float32)
    for k, path in enumerate(fold_models):
        manifest = Manifest(path, file_sha256(path), tuple(labels), labels[0], {}, max_len, stride)
        model = ContentClassifier(manifest, max_batch=64)
        idx = [i for i, r in enumerate(records) if assign[owner(r)] == k]
        for i, p in zip(idx, model.predict_windows([pieces[i] for i in idx]), strict=True):
            out[i] = p
    return out


def model_scores(manifest: Manifest, pieces: Sequence[bytes]) -> np.ndarray:
    """The shipped model's own probabilities for the windows (no second stage applied)."""
    from dlpproxy.detect.classifier import ContentClassifier

    plain = ContentClassifier(replace(manifest, stacker=None), max_batch=64)
    return np.stack(plain.predict_windows(list(pieces))).astype(np.float32)


def fit_stacker(
    records: Sequence[Record],
    labels: list[str],
    scores: np.ndarray,
    pieces: Sequence[bytes],
    c: float = 0.1,
    folds: int = 0,
) -> tuple[Stacker, dict[str, object]]:
    """Logistic regression (scikit-learn, L2, C=`c`) on standardised inputs; returns the
    `Stacker` and what the file records about its fitting."""
    from sklearn.linear_model import LogisticRegression

    x = model_inputs(scores, [p.decode("utf-8", "replace") for p in pieces])
    y = np.array([labels.index(r.label) for r in records])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    clf = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    stacker = Stacker(
        tuple(labels),
        mean.astype(np.float32),
        scale.astype(np.float32),
        clf.coef_.T.astype(np.float32),
        clf.intercept_.astype(np.float32),
    )
    info: dict[str, object] = {"fitted_on": len(records), "C": c, "folds": folds}
    return stacker, info


def write_stacker(stacker: Stacker, info: dict[str, object], models: Path) -> Path:
    """Write `classifier-stack.json` and name it, with its sha256, in `classifier.json`."""
    from dlpproxy.detect.classifier import MANIFEST, file_sha256

    path = models / FILE
    path.write_text(stacker.to_json({"trained": info}) + "\n", encoding="utf-8")
    manifest_path = models / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["stacker"] = {"file": FILE, "sha256": file_sha256(path), "format": STACK_FORMAT}
    manifest_path.write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path


def build_stacker(
    records: Sequence[Record],
    labels: list[str],
    models: Path,
    workdir: Path,
    epochs: int,
    max_len: int,
    command: str = "dlpproxy train --stacker",
    say: Callable[[str], None] = print,
    folds: int = 0,
) -> Path:
    """The whole second stage for the model in `models`: scores (the model's own with `folds`
    0, else out of fold from surrogates), fit, write."""
    from dlpproxy.detect.classifier import MANIFEST, Manifest

    manifest = Manifest.load(models / MANIFEST)
    records = [r for r in records if r.text]
    pieces = first_windows(records, manifest.max_len, manifest.stride)
    if folds == 0:
        scores = model_scores(manifest, pieces)
    else:
        fold_models = train_fold_models(records, labels, workdir, epochs, max_len, folds=folds)
        assign = owner_folds(records, labels, folds)
        scores = out_of_fold_scores(
            records, labels, fold_models, assign, manifest.max_len, manifest.stride
        )
    stacker, info = fit_stacker(records, labels, scores, pieces, folds=folds)
    if folds:
        info.update(surrogate_epochs=epochs, surrogate_max_len=max_len)
    info["command"] = command
    path = write_stacker(stacker, info, models)
    say(f"wrote {path}")
    return path
