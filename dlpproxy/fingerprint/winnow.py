"""k-gram hashes and the choice of fingerprints, vectorised with numpy.

A file keeps the k-gram that begins each of its lines (line anchors): a paste of whole lines,
looked up by all of its k-grams, holds them whatever it did to spacing and line breaks, and a
10-line snippet holds several. Lines long enough to hold a whole window (a paragraph written on
one line) also keep their winnowed k-grams (Schleimer, Wilkerson, Aiken 2003: the smallest hash
of every window of `w`, the rightmost on ties), whose guarantee is that two texts sharing a run
of at least w + k - 1 tokens on such a line share a fingerprint. Runs of lines too short for a
k-gram to anchor each (lists, `__all__` tables) also keep windows of whole lines (`line_kgrams`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from dlpproxy.fingerprint.normalise import NUMBER_CLASS, STRING_CLASS, Tokens, token_hash

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
U8 = npt.NDArray[np.uint8]
_CHUNK = 1 << 15  # k-grams hashed per numpy block (bounds the memory of huge files)
# A code k-gram with this many string literals is keyed by them as written (renaming keeps
# literals; an option table or a call with messages is generic once its strings are classes).
STRINGS_AS_WRITTEN = 3
# The hash of a k-gram too repetitive to count: never looked up, never stored.
SKIPPED = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True, slots=True)
class Channel:
    """One way of reading text: its k, its winnowing window, how many shared fingerprints make
    a match, and a name that keeps its hashes apart from the other channel's.

    Code fingerprints are selected and looked up by their renaming-proof hash; each carries an
    8-bit tag of the same k-gram hashed as written. A match whose tags agree too is an exact
    copy, and fewer of those (`min_exact`) make a match than of renamed ones (`min_matches`):
    each weighs 1/min_exact or 1/min_matches, and the channels of one file add up to the 1 a
    match needs.
    """

    name: str
    k: int
    w: int
    min_matches: float
    min_exact: float
    # k-grams with fewer distinct tokens are repetition (tables, argument lists), not content
    min_distinct: int = 0
    renames: bool = False  # identifiers hash as back-distances (the tag keeps the names)
    # of lines shorter than this (tokens), one anchor per stretch of this many tokens
    line_gap: int = 1
    # a shared fingerprint weighs 1 / (files holding it) ** rarity (0: every one weighs 1)
    rarity: float = 0.0
    # evidence made only of fingerprints shared renamed (tags disagree), each held by more
    # files than this, is a shape many files take once renamed, not a copy (0: no limit)
    renamed_common: int = 0
    # this many shared fingerprints that stand next to each other in the file and in that order
    # in the text are a copied stretch whatever each one's commonness: lines or sentences that
    # many files share one by one rarely follow each other in the same order (0: no such rule)
    run: int = 0
    # a line channel: its k-grams are windows of k whole lines (of code: lines holding a name
    # or a literal), kept only where those lines hold fewer than `short` tokens together
    short: int = 0

    @property
    def guarantee(self) -> int:
        """Shared runs of at least this many tokens always share a fingerprint."""
        return self.w + self.k - 1


CODE = Channel(
    "code", k=15, w=40, min_matches=3, min_exact=2, min_distinct=7, renames=True, line_gap=3,
    renamed_common=8, run=5,
)  # fmt: skip
PROSE = Channel(
    "prose", k=8, w=18, min_matches=1.5, min_exact=1.5, min_distinct=4, line_gap=2, rarity=1.0,
    run=5,
)  # fmt: skip
# Runs of short lines (a list with one word or one string per line, `__all__`, a class header's
# assignments): a 15-token or 8-word k-gram spans many of them, so a 10-line paste of them holds
# one or two line anchors. Windows of 4 whole lines give several (of code one kept per 2 lines:
# the store's budget; prose has far fewer such runs, and keeps every window); each weighs 1/2
# (divided by the files holding it), so 2 of one file alone are a match.
CODE_LINES = Channel(
    "code lines", k=4, w=1, min_matches=4, min_exact=2, renames=True,
    line_gap=2, rarity=1.0, short=CODE.k,
)  # fmt: skip
PROSE_LINES = Channel(
    "prose lines", k=4, w=1, min_matches=2, min_exact=2, rarity=1.0, short=PROSE.k,
)  # fmt: skip
_PLACE = np.uint64(0x9E3779B97F4A7C15)  # spreads a token's place in its line over the bits
_NAMED = np.uint64(token_hash("\x00named"))


def _powers(k: int, seed: int) -> U64:
    base = np.uint64(token_hash(f"\x00base{seed}") | 1)
    out = np.ones(k, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(1, k):
            out[j] = out[j - 1] * base
    return out


_PARAMS: dict[str, tuple[U64, U64]] = {}


def _params(channel: Channel) -> tuple[U64, U64]:
    """(powers of the polynomial base, values of identifier back-distances 0..k)."""
    found = _PARAMS.get(channel.name)
    if found is None:
        ids = np.array(
            [token_hash(f"\x00id{channel.name}{d}") for d in range(channel.k + 1)], dtype=np.uint64
        )
        found = (_powers(channel.k, len(channel.name) + channel.k), ids)
        _PARAMS[channel.name] = found
    return found


def _mix(h: U64) -> U64:
    """splitmix64's finaliser: spreads the polynomial's bits so that minima are unbiased."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def kgram_hashes(tokens: Tokens, channel: Channel) -> tuple[U64, U64]:
    """(key, as-written hash) of every k-gram of `tokens` (none if shorter than k).

    The key of a code k-gram is its renaming-proof hash: an identifier whose previous occurrence
    lies inside the k-gram hashes as that distance, any other as "new", so the hash depends only
    on the k-gram itself. Where that leaves too little variety (a table of string literals, a
    list of names) the key is the as-written hash instead, and SKIPPED where even that is
    repetitive.
    """
    k = channel.k
    n = len(tokens)
    if n < k:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty
    powers, ids = _params(channel)
    offsets = np.arange(k, dtype=np.int64)
    keys = np.empty(n - k + 1, dtype=np.uint64)
    written = np.empty(n - k + 1, dtype=np.uint64)
    for begin in range(0, n - k + 1, _CHUNK):
        stop = min(n, begin + _CHUNK + k - 1)
        lexical = sliding_window_view(tokens.lexical[begin:stop], k)
        plain = _polynomial(lexical, powers)
        written[begin : begin + len(plain)] = plain
        if not channel.renames:
            if channel.min_distinct:  # a run of numbers or one repeated word is not prose
                plain[_distinct(lexical) < channel.min_distinct] = SKIPPED
            keys[begin : begin + len(plain)] = plain
            continue
        dists = sliding_window_view(tokens.dists[begin:stop], k)
        inside = np.where(dists <= offsets, dists, 0)
        values = sliding_window_view(tokens.values[begin:stop], k)
        grams = np.where(dists < 0, values, ids[np.clip(inside, 0, k)])
        block = _polynomial(grams, powers)
        strings = np.count_nonzero(grams == STRING_CLASS, axis=1) >= STRINGS_AS_WRITTEN
        if np.any(strings):  # mostly literals: their wording is what the k-gram says
            semi = np.where(grams[strings] == STRING_CLASS, lexical[strings], grams[strings])
            block[strings] = _polynomial(semi, powers)
        flat = np.flatnonzero(_distinct(grams) < channel.min_distinct)
        if len(flat):
            block[flat] = _flat_keys(grams[flat], lexical[flat], plain[flat], channel)
        keys[begin : begin + len(block)] = block
    return keys, written


def line_kgrams(tokens: Tokens, channel: Channel) -> tuple[U64, U64, Tokens]:
    """(key, as-written hash) of every window of `channel.k` lines of `tokens`, and the stream
    of those lines (one token per line, spanning it), for a line channel.

    A line's key hashes its tokens in their places: names as the distance back to their previous
    occurrence on the line (else "new"), string literals as written (renaming keeps them),
    number literals as their class. Code lines without a name or a literal (a closing bracket,
    `else:`, imports) are not lines here, so windows run over the lines that say something. A
    window is SKIPPED where its lines hold `channel.short` tokens or more together (the token
    k-grams anchor such lines) or where two of its lines are alike (a table of `A = 1` rows);
    where no window is short, there are none at all."""
    n, k = len(tokens), channel.k
    firsts, sizes = _lines_of(tokens)
    named = tokens.dists >= 0
    literal = tokens.values == STRING_CLASS
    said = np.ones(len(firsts), dtype=bool)
    if channel.renames and n:
        content = named | literal | (tokens.values == NUMBER_CLASS)
        said = np.add.reduceat(content, firsts) > 0
    sizes_said = sizes[said]
    if len(sizes_said) < k:
        return _no_windows()
    totals = np.cumsum(sizes_said)
    together = totals[k - 1 :] - np.concatenate(([0], totals[:-k]))
    short = together < channel.short
    if not np.any(short):  # most prose and much code: no window to hash
        return _no_windows()
    place = np.arange(n, dtype=np.int64) - np.repeat(firsts, sizes)
    tokens_of = tokens.lexical[np.newaxis]  # prose: words are keyed as written
    if channel.renames:
        inside = np.where(named & (tokens.dists <= place), tokens.dists, 0).astype(np.uint64)
        keyed = np.where(named, _mix(inside + _NAMED), tokens.values)
        tokens_of = np.stack((np.where(literal, tokens.lexical, keyed), tokens.lexical))
    with np.errstate(over="ignore"):
        mixed = _mix(tokens_of ^ place.astype(np.uint64) * _PLACE)
    values = np.add.reduceat(mixed, firsts, axis=1)[:, said]  # per line: key, as written
    keys, written = values[0], values[-1]
    lasts = firsts + sizes - 1
    m = len(keys)
    stream = Tokens(keys, np.full(m, -1, dtype=np.int64), tokens.starts[firsts[said]],
                    tokens.ends[lasts[said]], written, np.arange(m, dtype=np.int64))  # fmt: skip
    powers, _ = _params(channel)
    windows = _window_hashes(values, powers)
    hashes, as_written = windows[0], windows[-1].copy()
    count = m - k + 1
    alike = np.zeros(count, dtype=bool)
    for apart in range(1, k):  # two alike lines in a window: a table of `A = 1` rows
        same = keys[apart:] == keys[:-apart]
        for first in range(k - apart):
            alike |= same[first : first + count]
    hashes[~short | alike] = SKIPPED
    return hashes, as_written, stream


def _window_hashes(values: U64, powers: U64) -> U64:
    """The polynomial hash of every window of len(powers) values along the last axis (as
    `_polynomial` of them)."""
    k, m = len(powers), values.shape[-1]
    with np.errstate(over="ignore"):
        total = values[..., : m - k + 1] * powers[0]
        for j in range(1, k):
            total = total + values[..., j : m - k + 1 + j] * powers[j]
        return _mix(total)


def _no_windows() -> tuple[U64, U64, Tokens]:
    empty = np.zeros(0, dtype=np.uint64)
    none = np.zeros(0, dtype=np.int64)
    return empty, empty, Tokens(empty, none, none, none, empty, none)


def _flat_keys(grams: npt.NDArray[np.uint64], lexical: npt.NDArray[np.uint64], plain: U64,
               channel: Channel) -> U64:  # fmt: skip
    """Keys of k-grams with too little variety once renamed: their string literals as written
    (a table of strings survives renaming), else the whole k-gram as written, else SKIPPED.
    Number literals do not make a k-gram specific enough to be matched whatever its names:
    numbered constants (`A = 1`, `B = 2`, ...) are everywhere."""
    powers, _ = _params(channel)
    semi = np.where(grams == STRING_CLASS, lexical, grams)
    keys = _polynomial(semi, powers)
    still = _distinct(semi) < channel.min_distinct
    keys[still] = plain[still]
    keys[still & (_distinct(lexical) < channel.min_distinct)] = SKIPPED
    return keys


def _polynomial(grams: npt.NDArray[np.uint64], powers: U64) -> U64:
    with np.errstate(over="ignore"):
        return _mix((grams * powers).sum(axis=1, dtype=np.uint64))


def _distinct(grams: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """How many different tokens each k-gram holds."""
    ordered = np.sort(grams, axis=1)
    return np.count_nonzero(ordered[:, 1:] != ordered[:, :-1], axis=1) + 1


def winnow(hashes: U64, w: int) -> npt.NDArray[np.int64]:
    """Positions of the selected hashes: the rightmost minimum of every window of `w`."""
    n = len(hashes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n <= w:
        return np.array([n - 1 - int(np.argmin(hashes[::-1]))], dtype=np.int64)
    picked = np.empty(n - w + 1, dtype=np.int64)
    for begin in range(0, n - w + 1, _CHUNK):
        stop = min(n, begin + _CHUNK + w - 1)
        windows = sliding_window_view(hashes[begin:stop], w)[:, ::-1]
        starts = np.arange(begin, begin + len(windows), dtype=np.int64)
        picked[begin : begin + len(windows)] = starts + (w - 1) - np.argmin(windows, axis=1)
    return np.unique(picked)


def stored(hashes: U64) -> U32:
    """The 32 bits of a hash the store keeps: half the size, and a random collision needs two
    unrelated k-grams to meet in one file before it can count (the detector wants two)."""
    return (hashes >> np.uint64(32)).astype(np.uint32)


def tags(hashes: U64) -> U8:
    """The 8-bit tag kept beside a fingerprint: the top bits of the as-written hash."""
    return (hashes >> np.uint64(56)).astype(np.uint8)


def _lines_of(tokens: Tokens) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(position of each line's first token, its number of tokens), lines without tokens left
    out (slicing: np.diff's prepend and append cost more than the work on a prompt)."""
    lines = tokens.lines
    if len(lines) == 0:
        return lines, lines
    starts = np.flatnonzero(np.concatenate(([True], lines[1:] != lines[:-1])))
    return starts, np.append(starts[1:], len(lines)) - starts


def line_anchors(tokens: Tokens, channel: Channel) -> npt.NDArray[np.int64]:
    """Positions of the k-grams that begin a line. Lines shorter than `line_gap` tokens (a
    closing bracket, `else:`, a row of a table) are covered by a neighbour's k-gram: one before
    a full line has none, and of a run of them only the first in each stretch of `line_gap`
    tokens has one."""
    n = len(tokens) - channel.k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    starts, lengths = _lines_of(tokens)
    full = lengths >= channel.line_gap
    stretch = starts // channel.line_gap
    first = np.concatenate(([True], stretch[1:] != stretch[:-1]))
    keep = full | (first & ~np.append(full[1:], False))
    anchors = starts[keep]
    return anchors[anchors < n]


def selected(tokens: Tokens, hashes: U64, channel: Channel) -> npt.NDArray[np.int64]:
    """Positions of the k-grams kept as fingerprints: line anchors, and the winnowed ones of
    lines long enough to hold a whole window (a paragraph on one line), where winnowing's
    guarantee holds; never a SKIPPED one."""
    picked = line_anchors(tokens, channel)
    starts, lengths = _lines_of(tokens)
    if np.any(lengths >= channel.guarantee):  # most code has no such line: no winnowing
        winnowed = winnow(hashes, channel.w)
        line = np.searchsorted(starts, winnowed, side="right") - 1
        picked = np.union1d(picked, winnowed[lengths[line] >= channel.guarantee])
    return picked[hashes[picked] != SKIPPED]


def fingerprints(tokens: Tokens, channel: Channel) -> tuple[U32, U8]:
    """The fingerprints of a token stream and their tags: the k-gram that begins each line,
    and winnowed ones inside long lines; distinct hashes in the order they occur (the
    detector checks that a text's matches come in the file's order).

    A pasted run of whole lines holds the anchors of its lines whatever it did to the spacing
    and line breaks, because the paste is looked up by all of its k-grams."""
    if channel.short:
        hashes, written, tokens = line_kgrams(tokens, channel)
    else:
        hashes, written = kgram_hashes(tokens, channel)
    if len(hashes) == 0:
        return stored(hashes), tags(hashes)
    picked = selected(tokens, hashes, channel)
    keys = stored(hashes[picked])
    _, first = np.unique(keys, return_index=True)
    first.sort()
    return keys[first], tags(written[picked])[first]
