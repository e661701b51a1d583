"""The classifier's second stage: the ONNX model's window probabilities and the window's layout
features (`layout.py`) combined by a multinomial logistic regression.

The ONNX model sees hashed n-grams; the label definitions also speak of structure it averages
away (a fenced code block of five or more lines, delimiter counts that repeat row after row,
speaker lines). The weights live in `models/classifier-stack.json`, named with its sha256 and
format version by `classifier.json`, and were fitted on out-of-fold predictions over the training
set (`dlpproxy train --stacker`), never on dev.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlpproxy.detect import layout
from dlpproxy.errors import DetectorError

NAME = "classifier"
STACK_FORMAT = 1
FILE = "classifier-stack.json"
LOG_FLOOR = 1e-4  # ONNX probabilities enter as logs, floored so that a hard 0 stays finite


def read_format(path: Path, expected: int, what: str, retrain: str) -> dict[str, Any]:
    """The JSON object in `path`, refused with a clear error unless its "format" is `expected`;
    malformed JSON raises ValueError for the caller to report."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or raw.get("format") != expected:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise DetectorError(
            NAME,
            f"{path}: {what} {found!r}, this version reads {what} {expected}; retrain with "
            f"`{retrain}`",
        )
    return raw


def model_inputs(probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """The stacker's input rows: log ONNX probabilities, then the layout features of each text."""
    logs = np.log(np.clip(probs, LOG_FLOOR, 1.0))
    feats = np.stack([layout.features(t) for t in texts]) if texts else np.zeros((0, 0))
    return np.hstack([logs, feats]).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Stacker:
    """Standardised inputs -> softmax(x @ coef + intercept); labels in the manifest's order."""

    labels: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # [inputs, labels]
    intercept: np.ndarray  # [labels]

    @classmethod
    def load(cls, path: Path, labels: Sequence[str]) -> Stacker:
        """Read the file (its sha256 already checked against the manifest) and check its format,
        labels and feature list against what this version computes."""
        try:
            raw = read_format(path, STACK_FORMAT, "stacker format", "dlpproxy train --stacker")
            if tuple(raw["features"]) != layout.NAMES or tuple(raw["labels"]) != tuple(labels):
                raise DetectorError(
                    NAME,
                    f"{path}: stacker was fitted on other features or labels than this version "
                    "computes; retrain with `dlpproxy train --stacker`",
                )
            stacker = cls(
                tuple(raw["labels"]),
                np.asarray(raw["mean"], dtype=np.float32),
                np.asarray(raw["scale"], dtype=np.float32),
                np.asarray(raw["coef"], dtype=np.float32),
                np.asarray(raw["intercept"], dtype=np.float32),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DetectorError(
                NAME, f"{path}: invalid stacker file ({type(exc).__name__}: {exc})"
            ) from exc
        width = len(labels) + len(layout.NAMES)
        if stacker.coef.shape != (width, len(labels)) or stacker.mean.shape != (width,):
            raise DetectorError(NAME, f"{path}: stacker weights have the wrong shape")
        return stacker

    def apply(self, probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Second-stage probabilities for a batch of windows: float32 [batch, labels]."""
        x = (model_inputs(probs, texts) - self.mean) / self.scale
        # einsum's own loop, not BLAS: a BLAS call wakes its thread pool, which then competes
        # with onnxruntime's thread for the core (several ms per window on a busy machine).
        logits = np.einsum("bi,ij->bj", x, self.coef) + self.intercept
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def to_json(self, extra: dict[str, object]) -> str:
        return json.dumps(
            {
                "format": STACK_FORMAT,
                "labels": list(self.labels),
                "features": list(layout.NAMES),
                "inputs": "log(ONNX probability) per label, floored at 1e-4, then the features",
                "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist(),
                "coef": self.coef.round(6).tolist(),
                "intercept": self.intercept.round(6).tolist(),
                **extra,
            },
            indent=1,
        )
