"""Writes the trained model into `models/`: the ONNX file and its manifest (sha256, labels,
thresholds, input spec); `card.py` writes the model card beside them."""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from dlpproxy.detect.classifier import FORMAT, MANIFEST, file_sha256
from dlpproxy.train.features import BUCKETS, GROUPS, HASH_SEED

MODEL_FILE = "classifier.onnx"


def save(model: onnx.ModelProto, labels: list[str], out: Path, info: dict[str, object]) -> Path:
    """Write model + manifest; returns the manifest path. Thresholds start at 0.5."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / MODEL_FILE
    onnx.save(model, str(path))
    manifest = {
        "format": FORMAT,
        "model": MODEL_FILE,
        "sha256": file_sha256(path),
        "labels": labels,
        "negative": "benign",
        "thresholds": {lb: 0.5 for lb in labels if lb != "benign"},
        "input": {
            "max_len": int(info["max_len"]),  # type: ignore[call-overload]
            "stride": int(info["stride"]),  # type: ignore[call-overload]
            "pad": -1,
            "encoding": "utf-8 bytes as int32 [batch, length]",
            "hash_seed": HASH_SEED,
            "buckets": BUCKETS,
            "groups": [f"{kind}:{n}" for kind, n in GROUPS],
        },
        "trained": info,
    }
    target = out / MANIFEST
    target.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
