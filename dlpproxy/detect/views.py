"""Other ways of reading a text, so that evasion tricks do not hide a secret.

A `View` is a text the detectors scan instead of (or beside) the original, with a way back to
the original's offsets:

- the *normalised* view drops zero-width characters, folds full-width ASCII and maps look-alike
  letters (Cyrillic/Greek homoglyphs) to Latin inside words that mix them with Latin letters or
  digits — so ``AKIА…`` with a Cyrillic ``А`` or ``ghp_\u200b…`` still matches, while real Russian
  or Greek words are left alone;
- *decoded* views are base64/hex blobs that decode to readable text; a finding inside one maps to
  the whole blob in the original (``via="base64"`` or ``"hex"``), and blobs are decoded again up
  to a depth.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import re
import threading
from dataclasses import dataclass

from dlpproxy.detect.hyperscan_db import HyperscanDb, hyperscan

# Zero-width and invisible format characters that split a token without showing.
_INVISIBLE = "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
_INVISIBLE += "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u206a\u206b\u206c"
_INVISIBLE += "\u206d\u206e\u206f\u3164\ufeff\uffa0"

# Look-alikes of Latin letters (Cyrillic, Greek, Latin small capitals), by Unicode's
# confusables data. Only the ones that pass for ASCII letters in common fonts.
_HOMOGLYPHS = {
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i",
    "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ո": "n", "ս": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v", "ι": "i", "κ": "k",
    "ℓ": "l", "ⅰ": "i", "ı": "i",
}  # fmt: skip

_SUSPECT = re.compile("[" + _INVISIBLE + "".join(_HOMOGLYPHS) + "\uff01-\uff5e]")
_LOOKALIKE = re.compile("[" + "".join(_HOMOGLYPHS) + "]")
# what changes wherever it stands: invisible characters (dropped), full-width ASCII (folded)
_TRANSLATED = re.compile("[" + _INVISIBLE + "\uff01-\uff5e]")
_WORD = re.compile(r"[\w" + _INVISIBLE + "]+")
_LATIN_OR_DIGIT = re.compile(r"[A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")

# Candidate encoded blobs. Base64 needs a mix of cases and digits to be worth decoding (an
# identifier like `assertAlmostEqual` is not a blob); hex needs 32+ digits.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{20,}={0,2}")
_HEX = re.compile(r"(?<!\w)(?:[0-9a-fA-F]{2}){16,}\b")
MAX_BLOBS = 64
MAX_BLOB_CHARS = 1 << 20
# Both kinds of blob hold a run of 20 base64 characters; one hyperscan pass tells whether a text
# has any, so that most prompts skip the two (slower) Python regex scans.
_RUN = rb"[A-Za-z0-9+/_-]{20}"
_run_db: HyperscanDb | None = None
_run_db_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class View:
    """A text to scan and how its offsets map back to the original text.

    `positions[i]` is the original offset of the view's character i (None: the view is a decoded
    blob and every finding maps to `blob` as a whole). `changed` holds sorted original offsets
    that normalisation altered, to tell a finding that needed normalising.
    """

    text: str
    via: str
    positions: tuple[int, ...] | None = None
    blob: tuple[int, int] = (0, 0)
    changed: tuple[int, ...] = ()

    def to_original(self, start: int, end: int) -> tuple[int, int, str]:
        """Original (start, end) of the view span [start, end), and how it was seen."""
        if self.positions is None:
            return self.blob[0], self.blob[1], self.via
        if not self.positions:
            return start, end, self.via
        last = len(self.positions) - 1
        o_start = self.positions[min(start, last)]
        o_end = self.positions[min(max(end - 1, start), last)] + 1
        lo = bisect.bisect_left(self.changed, o_start)
        via = "normalised" if lo < len(self.changed) and self.changed[lo] < o_end else ""
        return o_start, o_end, via


def normalised(text: str) -> View | None:
    """The normalised view of `text`, or None when nothing in it needs normalising.

    The work is per character that changes, not per character: regexes find the invisible and
    full-width ones (a CJK text's punctuation) and the words holding a look-alike letter (folded
    when they also hold Latin letters or digits); the text between them is sliced, not walked.
    """
    if text.isascii() or _SUSPECT.search(text) is None:
        return None
    changed = [m.start() for m in _TRANSLATED.finditer(text)]
    folded: list[int] = []
    if _LOOKALIKE.search(text) is not None:
        for word in _WORD.finditer(text):
            piece = word.group()
            if _LOOKALIKE.search(piece) is None or _LATIN_OR_DIGIT.search(piece) is None:
                continue
            folded += [word.start() + m.start() for m in _LOOKALIKE.finditer(piece)]
    if not changed and not folded:
        return None
    edits = sorted(changed + folded)
    parts: list[str] = []
    gone: list[int] = []  # the invisible characters dropped
    done = 0
    for i in edits:  # slices of the untouched text between the characters that change
        parts.append(text[done:i])
        ch = text[i]
        if "\uff01" <= ch <= "\uff5e":
            parts.append(chr(ord(ch) - 0xFEE0))
        elif ch in _INVISIBLE:
            gone.append(i)
        else:
            parts.append(_HOMOGLYPHS[ch])
        done = i + 1
    parts.append(text[done:])
    bounds = [-1, *gone, len(text)]  # the offsets of the characters kept
    positions = tuple(
        itertools.chain.from_iterable(range(lo + 1, hi) for lo, hi in itertools.pairwise(bounds))
    )
    return View("".join(parts), "normalised", positions, changed=tuple(edits))


def decoded(text: str, depth: int) -> list[View]:
    """Views of the base64/hex blobs in `text` that decode to readable text, `depth` levels deep."""
    if depth <= 0:
        return []
    views: list[View] = []
    for match, via in _blobs(text):
        plain = _decode(match.group(), via)
        if plain is None:
            continue
        span = (match.start(), match.end())
        views.append(View(plain, via, None, blob=span))
        for inner in decoded(plain, depth - 1):
            views.append(View(inner.text, f"{via}+{inner.via}", None, blob=span))
    return views


def _may_hold_blobs(text: str) -> bool:
    """False when `text` has no run of 20 base64 characters (then it has no blob); True when it
    has, or when hyperscan is missing (the regexes then decide alone)."""
    global _run_db
    if hyperscan is None:
        return True
    if _run_db is None:
        with _run_db_lock:
            if _run_db is None:
                _run_db = HyperscanDb([_RUN], hyperscan.HS_FLAG_SINGLEMATCH)
    return bool(_run_db.ids(text.encode("utf-8", "surrogatepass")))


def _blobs(text: str) -> list[tuple[re.Match[str], str]]:
    found: list[tuple[re.Match[str], str]] = []
    if len(text) < 20 or not _may_hold_blobs(text):
        return found
    for match in _HEX.finditer(text):
        found.append((match, "hex"))
        if len(found) >= MAX_BLOBS:
            return found
    for match in _BASE64.finditer(text):
        blob = match.group()
        if len(blob) > MAX_BLOB_CHARS or not _looks_encoded(blob):
            continue
        found.append((match, "base64"))
        if len(found) >= MAX_BLOBS:
            break
    return found


def _looks_encoded(blob: str) -> bool:
    core = blob.rstrip("=")
    has_upper = any(c.isupper() for c in core)
    has_lower = any(c.islower() for c in core)
    return (has_upper and has_lower and not core.isalpha()) or blob.endswith("=")


def _decode(blob: str, via: str) -> str | None:
    try:
        if via == "hex":
            raw = binascii.unhexlify(blob)
        else:
            core = blob.rstrip("=")
            padded = core + "=" * (-len(core) % 4)
            alt = "-_" if ("-" in core or "_" in core) else None
            raw = base64.b64decode(padded, altchars=alt.encode() if alt else None, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _readable(raw)


def _readable(raw: bytes) -> str | None:
    """`raw` as text when it is UTF-8 and mostly printable (random key bytes are not rescanned)."""
    if len(raw) < 8:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    if printable < 0.95 * len(text) or not any(c.isalpha() for c in text):
        return None
    return text
