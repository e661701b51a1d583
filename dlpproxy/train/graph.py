"""Builds the ONNX inference graph from trained weights, tokenisation included.

Input `bytes` is int32 [batch, L] (UTF-8 bytes, right-padded with -1); output `probs` is float32
[batch, classes]. The n-gram hashing of `features.py` runs inside the graph, so the host only
encodes text to bytes, and the same file runs on the CPU and CUDA providers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dlpproxy.train.features import BUCKETS, GROUPS, MAX_N, HashSpec

OPSET = 17


@dataclass(frozen=True, slots=True)
class Weights:
    """Trained parameters: embedding table (padding row last), two dense layers."""

    embedding: np.ndarray  # [BUCKETS + 1, D]
    w1: np.ndarray  # [len(GROUPS) * D + 1, H]
    b1: np.ndarray  # [H]
    w2: np.ndarray  # [H, C]
    b2: np.ndarray  # [C]


class _Builder:
    """Collects nodes and constants with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, value: np.ndarray, name: str = "") -> str:
        self._n += 1
        name = name or f"c{self._n}"
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _ngram_ids(b: _Builder, values: str, spec: HashSpec) -> tuple[str, str]:
    """Node outputs for the ids [B, G*L] and their validity as float [B, G*L]."""
    batch = b.op("Shape", values, start=0, end=1)
    tail_shape = b.op("Concat", batch, b.const(np.array([MAX_N - 1], np.int64)), axis=0)
    tail = b.op("ConstantOfShape", tail_shape, value=numpy_helper.from_array(np.zeros(1, np.int64)))
    padded = {"byte": b.op("Concat", values, tail, axis=1)}
    padded["shape"] = b.op("Gather", b.const(spec.shape_table), padded["byte"], axis=0)
    zero, buckets = b.const(np.array(0, np.int64)), b.const(np.array(BUCKETS, np.int64))
    axes = b.const(np.array([1], np.int64))
    big = b.const(np.array([np.iinfo(np.int64).max], np.int64))

    def shifted(seq: str, k: int) -> str:
        end = big if k == MAX_N - 1 else b.const(np.array([k - (MAX_N - 1)], np.int64))
        return b.op("Slice", seq, b.const(np.array([k], np.int64)), end, axes)

    ids, valids = [], []
    for g, (kind, n) in enumerate(GROUPS):
        h = b.const(np.array(spec.salts[g], np.int64))
        for k in range(n):
            term = b.op(
                "Mul", shifted(padded[kind], k), b.const(np.array(spec.multipliers[g, k], np.int64))
            )
            h = b.op("Add", h, term)
        h = b.op("Sub", h, b.op("Mul", b.op("Div", h, buckets), buckets))
        valid = b.op("Greater", shifted(padded[kind], n - 1), zero)
        ids.append(b.op("Where", valid, h, buckets))
        valids.append(b.op("Cast", valid, to=TensorProto.FLOAT))
    return b.op("Concat", *ids, axis=1), b.op("Concat", *valids, axis=1)


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: the table shrinks four-fold; mean pooling averages the error away."""
    scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    return np.round(table / scale).astype(np.int8), scale.astype(np.float32)


def _pooled(b: _Builder, ids: str, valid: str, weights: Weights) -> str:
    """Mean embedding of each group's valid n-grams, concatenated: [B, G * D]."""
    groups, dim = len(GROUPS), weights.embedding.shape[1]
    table, scale = quantize_rows(weights.embedding)
    rows = b.op(
        "Cast", b.op("Gather", b.const(table, "embedding_int8"), ids, axis=0), to=TensorProto.FLOAT
    )
    rows = b.op("Mul", rows, b.op("Gather", b.const(scale, "embedding_scale"), ids, axis=0))
    rows = b.op("Reshape", rows, b.const(np.array([0, groups, -1, dim], np.int64)))
    axes = b.const(np.array([2], np.int64))
    total = b.op("ReduceSum", rows, axes, keepdims=0)
    count = b.op("Reshape", valid, b.const(np.array([0, groups, -1], np.int64)))
    count = b.op("ReduceSum", count, axes, keepdims=1)
    mean = b.op("Div", total, b.op("Max", count, b.const(np.array(1.0, np.float32))))
    return b.op("Reshape", mean, b.const(np.array([0, groups * dim], np.int64)))


def build_model(weights: Weights, spec: HashSpec, labels: list[str]) -> onnx.ModelProto:
    """The whole classifier as one ONNX model (embedding table stored as int8 + row scales)."""
    b = _Builder()
    x = b.op("Cast", "bytes", to=TensorProto.INT64)
    values = b.op("Add", x, b.const(np.array(1, np.int64)))
    ids, valid = _ngram_ids(b, values, spec)
    pooled = _pooled(b, ids, valid, weights)
    one = b.const(np.array(1.0, np.float32))
    present = b.op("Cast", b.op("GreaterOrEqual", x, b.const(np.array(0, np.int64))), to=1)
    nbytes = b.op("ReduceSum", present, b.const(np.array([1], np.int64)), keepdims=1)
    loglen = b.op("Div", b.op("Log", b.op("Add", nbytes, one)), b.const(np.array(8.0, np.float32)))
    feats = b.op("Concat", pooled, loglen, axis=1)
    w1, b1 = b.const(weights.w1.astype(np.float32)), b.const(weights.b1.astype(np.float32))
    hidden = b.op("Relu", b.op("Gemm", feats, w1, b1))
    w2, b2 = b.const(weights.w2.astype(np.float32)), b.const(weights.b2.astype(np.float32))
    logits = b.op("Gemm", hidden, w2, b2)
    b.nodes.append(helper.make_node("Softmax", [logits], ["probs"], axis=1))
    graph = helper.make_graph(
        b.nodes,
        "dlpproxy_classifier",
        [helper.make_tensor_value_info("bytes", TensorProto.INT32, ["batch", "length"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(labels)])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    model.producer_name = "dlpproxy-train"
    helper.set_model_props(model, {"labels": ",".join(labels)})
    onnx.checker.check_model(model)
    return model


def reference_forward(rows: np.ndarray, weights: Weights, spec: HashSpec) -> np.ndarray:
    """The graph's computation in numpy: the oracle the tests compare the ONNX model against."""
    from dlpproxy.train.features import ngram_ids

    table, scale = quantize_rows(weights.embedding)
    ids = ngram_ids(rows, spec).reshape(rows.shape[0], len(GROUPS), -1)
    emb = table[ids].astype(np.float32) * scale[ids]
    count = (ids != BUCKETS).sum(axis=2, keepdims=True).astype(np.float32)
    mean = (emb.sum(axis=2) / np.maximum(count, 1.0)).reshape(rows.shape[0], -1)
    loglen = np.log((rows >= 0).sum(axis=1, keepdims=True) + 1.0) / 8.0
    hidden = np.maximum(np.concatenate([mean, loglen], axis=1) @ weights.w1 + weights.b1, 0.0)
    logits = hidden @ weights.w2 + weights.b2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
