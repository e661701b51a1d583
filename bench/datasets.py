"""The labelled evaluation sets in ../shared/data: where they are and their records."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Span:
    """A labelled stretch text[start:end] of one kind (a rule name or a PII type)."""

    start: int
    end: int
    type: str


@dataclass(frozen=True, slots=True)
class Record:
    """One prompt of an evaluation set: positives carry spans, negatives may carry decoys."""

    id: str
    text: str
    label: str
    spans: tuple[Span, ...]
    decoys: tuple[Span, ...] = ()

    @property
    def positive(self) -> bool:
        return self.label == "positive"


class DatasetError(Exception):
    """An evaluation file is missing or malformed; the message names the file and line."""


def data_dir() -> Path:
    """`DLPPROXY_DATA_DIR`, else ../shared/data beside the repository."""
    env = os.environ.get("DLPPROXY_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def default_path(name: str) -> Path:
    """The dev split of a named set (`secrets`, `pii`)."""
    return data_dir() / name / "dev.jsonl"


def _spans(raw: object) -> tuple[Span, ...]:
    items = raw if isinstance(raw, list) else []
    return tuple(Span(int(s["start"]), int(s["end"]), str(s["type"])) for s in items)


def load(path: Path) -> list[Record]:
    """Read an evaluation file; a bad line is an error naming the file and line number."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found; set DLPPROXY_DATA_DIR or pass the path")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                records.append(
                    Record(
                        id=str(raw["id"]),
                        text=str(raw["text"]),
                        label=str(raw["label"]),
                        spans=_spans(raw.get("spans")),
                        decoys=_spans(raw.get("decoys")),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DatasetError(f"{path}:{number}: bad record ({exc})") from None
    return records
