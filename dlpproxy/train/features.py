"""The classifier's input features: hashed byte n-grams and hashed character-shape n-grams.

One definition, three implementations that must agree: `ngram_ids` here (numpy, the reference and
the tests' oracle), the torch version in `fit.py` (training) and the ONNX graph in `graph.py`
(inference). Bytes work for every script and every programming language without a vocabulary;
shape n-grams (letter/digit/space/punctuation classes) carry layout such as indentation, CSV
columns and speaker lines independently of the natural language.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD = -1
BUCKETS = 262139  # a prime near 2**18; row BUCKETS of the table is the all-zero padding row
# (sequence, n): "byte" n-grams over byte values, "shape" n-grams over character classes.
GROUPS: tuple[tuple[str, int], ...] = (
    ("byte", 1),
    ("byte", 2),
    ("byte", 3),
    ("byte", 4),
    ("shape", 3),
    ("shape", 5),
    ("shape", 8),
)
MAX_N = max(n for _, n in GROUPS)
HASH_SEED = 20261123
_PUNCTUATION = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


@dataclass(frozen=True, slots=True)
class HashSpec:
    """The constants of the n-gram hash: per group, one multiplier per position and a salt."""

    multipliers: np.ndarray  # int64 [len(GROUPS), MAX_N]
    salts: np.ndarray  # int64 [len(GROUPS)]
    shape_table: np.ndarray  # int64 [257]: class of (byte value + 1); 0 is padding


def _shape_table() -> np.ndarray:
    """Character class of every byte, indexed by byte value + 1 (index 0 is padding)."""
    table = np.zeros(257, dtype=np.int64)
    for b in range(256):
        c = bytes([b])
        if c.islower():
            cls = 1
        elif c.isupper():
            cls = 2
        elif c.isdigit():
            cls = 3
        elif b == 0x20:
            cls = 4
        elif b == 0x09:
            cls = 5
        elif b == 0x0A:
            cls = 6
        elif b == 0x0D:
            cls = 7
        elif b < 0x20 or b == 0x7F:
            cls = 8
        elif 0x80 <= b < 0xC0:
            cls = 9
        elif b >= 0xC0:
            cls = 10
        else:
            cls = 11 + _PUNCTUATION.index(c)
        table[b + 1] = cls
    return table


def hash_spec(seed: int = HASH_SEED) -> HashSpec:
    """The fixed hash constants; the seed is part of the model's input spec (in the manifest)."""
    rng = np.random.default_rng(seed)
    multipliers = rng.integers(1, 2**21, size=(len(GROUPS), MAX_N), dtype=np.int64) | 1
    salts = rng.integers(0, BUCKETS, size=len(GROUPS), dtype=np.int64)
    return HashSpec(multipliers, salts, _shape_table())


def encode_window(data: bytes, length: int | None = None) -> np.ndarray:
    """UTF-8 bytes as int32, right-padded with PAD to `length` (the graph's input row)."""
    row = np.frombuffer(data, dtype=np.uint8).astype(np.int32)
    if length is None or length <= row.size:
        return row
    out = np.full(length, PAD, dtype=np.int32)
    out[: row.size] = row
    return out


def ngram_ids(rows: np.ndarray, spec: HashSpec) -> np.ndarray:
    """Embedding row of every n-gram of every group: int64 [batch, len(GROUPS) * L].

    An n-gram that runs into padding maps to the zero row BUCKETS, so it adds nothing and is not
    counted in the mean.
    """
    values = rows.astype(np.int64) + 1
    batch, length = values.shape
    tail = np.zeros((batch, MAX_N - 1), dtype=np.int64)
    sequences = {
        "byte": np.concatenate([values, tail], axis=1),
        "shape": spec.shape_table[np.concatenate([values, tail], axis=1)],
    }
    out = []
    for g, (kind, n) in enumerate(GROUPS):
        seq = sequences[kind]
        h = np.full((batch, length), spec.salts[g], dtype=np.int64)
        for k in range(n):
            h = h + seq[:, k : k + length] * spec.multipliers[g, k]
        h = h % BUCKETS
        valid = seq[:, n - 1 : n - 1 + length] > 0
        out.append(np.where(valid, h, BUCKETS))
    return np.concatenate(out, axis=1)
