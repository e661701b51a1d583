"""Training from scratch with torch: an embedding bag over hashed n-grams and a small MLP.

Random crops of the training texts (whole texts, windows of the inference length and short
pieces) teach the model every window size it will see; n-gram dropout and label smoothing keep
it from leaning on a handful of source-specific strings.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlpproxy.train.augment import ScriptSwap, word_pools
from dlpproxy.train.corpus import Record
from dlpproxy.train.features import BUCKETS, GROUPS, MAX_N, PAD, HashSpec
from dlpproxy.train.graph import Weights


@dataclass(frozen=True, slots=True)
class FitConfig:
    """Hyper-parameters; the defaults made the shipped model."""

    dim: int = 32
    hidden: int = 128
    epochs: int = 12
    batch: int = 128
    lr: float = 3e-3
    max_len: int = 2048
    ngram_dropout: float = 0.5
    label_smoothing: float = 0.05
    swap_rate: float = 0.7
    natural_priors: bool = True
    seed: int = 0


class TorchHasher(nn.Module):
    """`features.ngram_ids` in torch (same constants), run on the training device."""

    def __init__(self, spec: HashSpec) -> None:
        super().__init__()
        self.register_buffer("mult", torch.from_numpy(spec.multipliers.copy()))
        self.register_buffer("salts", torch.from_numpy(spec.salts.copy()))
        self.register_buffer("shape_table", torch.from_numpy(spec.shape_table.copy()))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        values = rows.long() + 1
        batch, length = values.shape
        tail = values.new_zeros((batch, MAX_N - 1))
        byte_seq = torch.cat([values, tail], dim=1)
        seqs = {"byte": byte_seq, "shape": self.shape_table[byte_seq]}
        out = []
        for g, (kind, n) in enumerate(GROUPS):
            seq = seqs[kind]
            h = self.salts[g].expand(batch, length).clone()
            for k in range(n):
                h = h + seq[:, k : k + length] * self.mult[g, k]
            h = torch.remainder(h, BUCKETS)
            valid = seq[:, n - 1 : n - 1 + length] > 0
            out.append(torch.where(valid, h, torch.full_like(h, BUCKETS)))
        return torch.cat(out, dim=1)


class BagClassifier(nn.Module):
    """Mean n-gram embedding per group plus log length -> ReLU layer -> class logits."""

    def __init__(self, spec: HashSpec, classes: int, cfg: FitConfig) -> None:
        super().__init__()
        self.hasher = TorchHasher(spec)
        self.embedding = nn.Parameter(torch.randn(BUCKETS + 1, cfg.dim) * 0.1)
        self.fc1 = nn.Linear(len(GROUPS) * cfg.dim + 1, cfg.hidden)
        self.fc2 = nn.Linear(cfg.hidden, classes)
        self.ngram_dropout = cfg.ngram_dropout
        self.dropout = nn.Dropout(0.1)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        ids = self.hasher(rows)
        if self.training and self.ngram_dropout > 0:
            drop = torch.rand(ids.shape, device=ids.device) < self.ngram_dropout
            ids = torch.where(drop, torch.full_like(ids, BUCKETS), ids)
        batch = ids.shape[0]
        per_group = ids.reshape(batch * len(GROUPS), -1)
        mean = F.embedding_bag(per_group, self.embedding, mode="mean", padding_idx=BUCKETS)
        mean = mean.reshape(batch, -1)
        loglen = torch.log((rows >= 0).sum(dim=1, keepdim=True).float() + 1.0) / 8.0
        hidden = F.relu(self.fc1(torch.cat([mean, loglen], dim=1)))
        return self.fc2(self.dropout(hidden))

    def export_weights(self) -> Weights:
        emb = self.embedding.detach().float().cpu().numpy().copy()
        emb[BUCKETS] = 0.0
        return Weights(
            emb,
            self.fc1.weight.detach().cpu().numpy().T.copy(),
            self.fc1.bias.detach().cpu().numpy().copy(),
            self.fc2.weight.detach().cpu().numpy().T.copy(),
            self.fc2.bias.detach().cpu().numpy().copy(),
        )


def _crop(data: bytes, rng: random.Random, max_len: int) -> bytes:
    """A whole text, a window of the inference length, or a short piece (for short prompts)."""
    roll = rng.random()
    if roll < 0.55:
        size = max_len
    elif roll < 0.85:
        size = rng.randint(256, max_len)
    else:
        size = rng.randint(16, 256)
    if len(data) <= size:
        return data
    start = rng.randint(0, len(data) - size)
    return data[start : start + size]


def _batch_rows(pieces: Sequence[bytes]) -> np.ndarray:
    length = max(1, max(len(p) for p in pieces))
    rows = np.full((len(pieces), length), PAD, dtype=np.int32)
    for i, p in enumerate(pieces):
        rows[i, : len(p)] = np.frombuffer(p, dtype=np.uint8)
    return rows


def fit(
    records: Sequence[Record],
    labels: list[str],
    spec: HashSpec,
    cfg: FitConfig,
    progress: Callable[[str], None] | None = None,
) -> Weights:
    """Train on `records` and return the weights for `graph.build_model`."""
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    index = {name: i for i, name in enumerate(labels)}
    swap = ScriptSwap(word_pools(records, seed=cfg.seed), cfg.swap_rate, cfg.seed)
    say(f"script swap into {swap.langs} for {cfg.swap_rate:.0%} of the samples")
    target = np.array([index[r.label] for r in records], dtype=np.int64)
    counts = np.bincount(target, minlength=len(labels)).astype(np.float64)
    class_weight = torch.tensor(
        counts.sum() / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32
    )
    model = BagClassifier(spec, len(labels), cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(len(records) / cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1
    )
    if cfg.natural_priors:
        class_weight = torch.ones(len(labels))
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weight.to(device), label_smoothing=cfg.label_smoothing
    )
    say(f"training on {device}: {len(records)} records, {len(labels)} labels, {cfg.epochs} epochs")
    for epoch in range(cfg.epochs):
        order = list(range(len(records)))
        rng.shuffle(order)
        model.train()
        started, total, seen = time.monotonic(), 0.0, 0
        for at in range(0, len(order), cfg.batch):
            idx = order[at : at + cfg.batch]
            pieces = [
                _crop(swap(records[i]).encode("utf-8", "replace"), rng, cfg.max_len) for i in idx
            ]
            rows = torch.from_numpy(_batch_rows(pieces))
            y = torch.from_numpy(target[idx])
            loss = loss_fn(model(rows.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        took = time.monotonic() - started
        say(f"epoch {epoch + 1}/{cfg.epochs}: loss {total / seen:.4f} ({took:.1f} s)")
    model.eval()
    return model.export_weights()
