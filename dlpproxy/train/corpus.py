"""Labelled records: reading the JSON-lines corpus, and cutting extra training text from public
files installed on this machine (programs, manuals, translations, data files, logs)."""

from __future__ import annotations

import gettext
import gzip
import json
import random
import re
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dlpproxy.errors import DlpError

NEGATIVE = "benign"


@dataclass(frozen=True, slots=True)
class Record:
    """One labelled text; `source` says where it was cut from, `lang` its natural language."""

    text: str
    label: str
    lang: str = ""
    source: str = ""


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_jsonl(path: Path) -> list[Record]:
    """Records of a JSON-lines file (gzip allowed) with at least `text` and `label`."""
    if not path.is_file():
        raise DlpError(f"{path}: no such file; pass labelled JSON lines ({{'text', 'label'}})")
    out = []
    with _open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                out.append(
                    Record(obj["text"], obj["label"], obj.get("lang", ""), obj.get("source", ""))
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise DlpError(
                    f"{path}:{lineno}: not a record with 'text' and 'label' ({exc})"
                ) from exc
    return out


def write_jsonl(path: Path, records: Iterable[Record]) -> int:
    """Write records as gzip JSON lines; returns how many."""
    n = 0
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in records:
            fh.write(
                json.dumps(
                    {"text": r.text, "label": r.label, "lang": r.lang, "source": r.source},
                    ensure_ascii=False,
                )
                + "\n"
            )
            n += 1
    return n


def _chunks(lines: list[str], rng: random.Random, lo: int, hi: int) -> Iterator[list[str]]:
    i = rng.randrange(0, max(1, len(lines) // 4))
    while i + lo <= len(lines):
        size = rng.randint(lo, hi)
        yield lines[i : i + size]
        i += size + rng.randint(0, hi)


_COMMENT = re.compile(r"^\s*(#|//|/\*|\*|--|;)")


def _code_records(paths: Iterable[Path], lang: str, rng: random.Random, cap: int) -> list[Record]:
    out: list[Record] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for chunk in _chunks(text.splitlines(), rng, 5, 80):
            body = "\n".join(chunk).strip("\n")
            code = [ln for ln in chunk if ln.strip()]
            if len(body) < 60 or not code:
                continue
            if sum(bool(_COMMENT.match(ln)) for ln in code) > 0.6 * len(code):
                continue
            out.append(Record(body[:4000], "source_code", "en", f"local:{path}#{lang}"))
            if len(out) >= cap:
                return out
    return out


def _data_records(paths: Iterable[Path], rng: random.Random, cap: int) -> list[Record]:
    out: list[Record] = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        header = lines[0] if path.suffix in (".csv", ".tsv") else None
        for chunk in _chunks(lines[1:], rng, 5, 100):
            if header is not None and rng.random() < 0.5:
                chunk = [header, *chunk]
            body = "\n".join(chunk)[:4000]
            if len(body) >= 60:
                out.append(Record(body, "data_export", "en", f"local:{path}"))
            if len(out) >= cap:
                return out
    return out


_TROFF_ESCAPE = re.compile(r"\\f[BIRP1-9]|\\\(..|\\[-&e|^]|\\s[-+]?\d")


def _man_text(path: Path) -> str:
    """Prose of a man page: troff requests dropped, font escapes removed (good enough for text)."""
    with _open(path) as fh:
        raw = fh.read()
    paras: list[str] = []
    cur: list[str] = []
    for line in raw.splitlines():
        if line.startswith((".", "'")):
            if line[1:3] in ("PP", "SH", "SS", "P", "LP", "TP", "IP") and cur:
                paras.append(" ".join(cur))
                cur = []
            if line[1:3] in ("SH", "SS"):
                paras.append(_TROFF_ESCAPE.sub("", line[4:]).strip('"'))
            continue
        cur.append(_TROFF_ESCAPE.sub("", line).replace("\\", ""))
    if cur:
        paras.append(" ".join(cur))
    return "\n\n".join(p for p in paras if p.strip())


def _prose_records(
    texts: Iterable[tuple[str, str, str]], rng: random.Random, cap: int
) -> list[Record]:
    """Cut (text, lang, source) at paragraph boundaries into pieces of a random target size."""
    out: list[Record] = []
    for text, lang, source in texts:
        paras = [p for p in text.split("\n\n") if p.strip()]
        i = 0
        while i < len(paras) and len(out) < cap:
            target, piece = rng.choice((60, 200, 600, 1500, 3000)), list[str]()
            while i < len(paras) and sum(len(p) for p in piece) < target:
                piece.append(paras[i])
                i += 1
            body = "\n\n".join(piece)[:4000]
            if len(body) >= 20:
                out.append(Record(body, NEGATIVE, lang, source))
    return out


def _man_pages(lang_dir: str, rng: random.Random) -> Iterator[tuple[str, str, str]]:
    lang = lang_dir.split("_")[0] if lang_dir else "en"
    root = Path("/usr/share/man") / lang_dir
    files = sorted(p for p in root.glob("man[1-8]/*") if p.is_file())
    rng.shuffle(files)
    for path in files:
        try:
            yield _man_text(path), lang, f"local:{path}"
        except (OSError, UnicodeDecodeError, EOFError):
            continue


def _translations(lang_dir: str) -> Iterator[tuple[str, str, str]]:
    """Translated interface messages of installed programs, one paragraph per message."""
    for path in sorted((Path("/usr/share/locale") / lang_dir / "LC_MESSAGES").glob("*.mo")):
        try:
            with path.open("rb") as fh:
                catalog = gettext.GNUTranslations(fh)
        except (OSError, UnicodeDecodeError):
            continue
        messages = [m for k, m in catalog._catalog.items() if k and isinstance(m, str)]  # type: ignore[attr-defined]
        if messages:
            yield (
                "\n\n".join(m.strip() for m in messages if m.strip()),
                lang_dir.split("_")[0],
                f"local:{path}",
            )


_BLOCK = re.compile(r"```|^\s*\.\. code|::\s*$|^( {4}|\t)\S", re.M)


def _package_docs() -> Iterator[tuple[str, str, str]]:
    """Long descriptions (the README) of installed Python packages, code blocks removed."""
    seen: set[str] = set()
    for path in sorted(
        Path("/").glob("root/.pyenv/versions/*/lib/python*/site-packages/*.dist-info/METADATA")
    ):
        name = path.parent.name.split("-")[0].lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            _, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        except (OSError, UnicodeDecodeError):
            continue
        paras = [
            p for p in body.split("\n\n") if p.strip() and not _BLOCK.search(p) and "|" not in p
        ]
        yield "\n\n".join(paras), "en", f"local:{path}"


def collect_local(seed: int = 0) -> list[Record]:
    """Extra training records cut from public text installed here; `source` names each file."""
    rng = random.Random(seed)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = _code_records(sorted(stdlib.glob("*.py")), "python", rng, 700)
    code += _code_records(sorted(Path("/usr/include").rglob("*.h")), "c", rng, 500)
    code += _code_records(sorted(Path("/usr/share/perl5").rglob("*.pm")), "perl", rng, 250)
    shells = [p for p in sorted(Path("/usr/bin").iterdir()) if _is_shell(p)]
    code += _code_records(shells, "shell", rng, 250)
    data_files = sorted(Path("/").glob("root/.pyenv/versions/*/lib/python*/site-packages/**/*.csv"))
    data = _data_records(data_files, rng, 500)
    logs = [
        Path("/var/log/dpkg.log"),
        Path("/var/log/alternatives.log"),
        Path("/var/log/apt/history.log"),
        Path("/var/log/apt/term.log"),
    ]
    data += _data_records([p for p in logs if p.is_file()], rng, 400)
    prose: list[Record] = []
    for lang_dir, cap in (
        ("ja", 900),
        ("ko", 400),
        ("zh_CN", 400),
        ("zh_TW", 150),
        ("es", 300),
        ("", 600),
    ):
        prose += _prose_records(_man_pages(lang_dir, rng), rng, cap)
    prose += _prose_records(_package_docs(), rng, 800)
    for lang_dir in ("ja", "ko", "zh_CN", "ar", "es"):
        prose += _prose_records(_translations(lang_dir), rng, 250)
    return code + data + prose


def _is_shell(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(32)
    except OSError:
        return False
    return head.startswith((b"#!/bin/sh", b"#! /bin/sh", b"#!/bin/bash", b"#!/usr/bin/env bash"))
