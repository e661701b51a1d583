"""Script swap: English words replaced by words of another language, layout kept.

The corpus ties languages to labels (Chinese text is mostly meeting notes, Japanese and Korean
appear almost only in prompts), so a model can learn the language instead of the kind of text.
Swapping the words of prose, of data fields and of code comments and strings for Chinese,
Japanese, Korean, Arabic or Russian words (taken from the training records themselves) leaves
the structure as the only signal: minutes stay minutes, CSV stays CSV, code stays code.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from dlpproxy.train.corpus import Record

_WORD = re.compile(r"[A-Za-z][a-z]{1,}")
_FENCE = re.compile(r"```.*?```", re.S)
_CODE_TEXT = re.compile(r"(#|//|--|/\*|\*)[^\n]*|\"[^\"\n]{3,}\"|'[^'\n]{3,}'")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]+")
_OTHER_WORD = re.compile(r"[^\sA-Za-z0-9\W]{2,}|[\uac00-\ud7a3]+|[\u0600-\u06ff]+|[\u0400-\u04ff]+")


SWAP_LANGS = ("zh", "ja", "ko", "ar", "ru", "el", "hi", "th")


def word_pools(
    records: Sequence[Record], per_lang: int = 20000, seed: int = 0
) -> dict[str, list[str]]:
    """Words of the non-English training prose, by language (CJK: runs cut into 1-4 characters)."""
    rng = random.Random(seed)
    pools: dict[str, list[str]] = {}
    for r in records:
        if r.lang not in SWAP_LANGS or len(pools.get(r.lang, ())) >= per_lang:
            continue
        pool = pools.setdefault(r.lang, [])
        if r.lang in ("zh", "ja"):
            for run in _CJK_RUN.findall(r.text):
                at = 0
                while at < len(run):
                    size = rng.randint(1, 4)
                    pool.append(run[at : at + size])
                    at += size
        else:
            pool.extend(_OTHER_WORD.findall(r.text))
    return {lang: words for lang, words in pools.items() if len(words) >= 200}


class ScriptSwap:
    """Rewrites a record's words into a random other language with probability `rate`."""

    def __init__(self, pools: dict[str, list[str]], rate: float, seed: int = 0) -> None:
        self.pools = pools
        self.langs = sorted(pools)
        self.rate = rate if pools else 0.0
        self.rng = random.Random(seed)

    def _swap_words(self, text: str, pool: list[str], share: float) -> str:
        rng = self.rng
        return _WORD.sub(lambda m: rng.choice(pool) if rng.random() < share else m.group(0), text)

    def _swap_code(self, text: str, pool: list[str], share: float) -> str:
        return _CODE_TEXT.sub(lambda m: self._swap_words(m.group(0), pool, share), text)

    def __call__(self, record: Record) -> str:
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return record.text
        pool = self.pools[self.rng.choice(self.langs)]
        share = self.rng.uniform(0.5, 1.0)
        if record.label != "source_code":
            return self._swap_words(record.text, pool, share)
        parts, at = [], 0
        for fence in _FENCE.finditer(record.text):
            prose = record.text[at : fence.start()]
            parts.append(self._swap_words(prose, pool, share))
            parts.append(self._swap_code(fence.group(0), pool, share))
            at = fence.end()
        tail = record.text[at:]
        parts.append(
            self._swap_words(tail, pool, share) if at else self._swap_code(tail, pool, share)
        )
        return "".join(parts)
