"""The index in memory and the lookup of one text against it.

Every fingerprint of every file sits in one sorted numpy array beside the file it belongs to;
a text's k-gram hashes (all of them, so that every fingerprint a file kept inside the shared part
is seen) are found with two binary searches. Fingerprints that occur in many files (idioms,
boilerplate the file filters missed; identical copies and near-copies count once) or in public
code registered as an allow-list are left out when the array is built; for prose, one held by
several files weighs less. A file matches when the ordered chains of its fingerprints in the
text, code and prose (and their windows of short lines) together, weigh enough, or when several
of them stand next to each other in the file and in that order in the text, however common each
one (see `_enough`); code that shares with it only renamed shapes that many files take is no
evidence.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from dlpproxy.fingerprint.normalise import Tokens, code_tokens, prose_tokens
from dlpproxy.fingerprint.winnow import (
    CODE,
    CODE_LINES,
    PROSE,
    PROSE_LINES,
    SKIPPED,
    U8,
    U32,
    Channel,
    kgram_hashes,
    line_kgrams,
    selected,
    stored,
    tags,
)

I64 = npt.NDArray[np.int64]
# Matched stretches closer than this (characters) are one region of the text.
MERGE_GAP = 400
# Order checks look at no more than this many matches of one file and channel, each against the
# few matches before it; only this many candidate files (those sharing most) are looked at.
CHAIN_LIMIT = 64
CHAIN_REACH = 8
# Shared fingerprints outside a file's chain still weigh this share: a line the file repeats
# (it keeps the first place of a fingerprint only) or a paragraph moved is out of order, so
# weaker evidence than a chain, but evidence.
OUT_OF_ORDER = 1 / 3
MAX_CANDIDATES = 8
# Near-copies share their FAMILY_SKETCH smallest fingerprints; files with fewer than
# FAMILY_MIN_FINGERPRINTS are their own family (too few for a sketch to mean much).
FAMILY_SKETCH = 4
FAMILY_MIN_FINGERPRINTS = 8
_TRIPLE_QUOTE = re.compile(r'"""|\'\'\'')
_OPENS_STRING = re.compile(r"(^|[=(\[{,:]|\breturn)\s*[rRbBuUfF]{0,2}$")


@dataclass(frozen=True, slots=True)
class Match:
    """A region text[start:end] that shares `matched` fingerprints with one indexed file;
    `similarity` is the share of the text's own fingerprints found in that file."""

    file_id: int
    start: int
    end: int
    matched: int
    similarity: float


class MemoryIndex:
    """Fingerprints of all indexed files, sorted, with the file each one came from."""

    def __init__(
        self, per_file: Sequence[tuple[int, U32, U8]], max_files: int, public: U32 | None = None
    ):
        sizes = [len(h) for _, h, _ in per_file]
        hashes = np.concatenate([h for _, h, _ in per_file]) if per_file else np.zeros(0, np.uint32)
        marks = np.concatenate([t for _, _, t in per_file]) if per_file else np.zeros(0, np.uint8)
        owners = np.repeat(np.array([f for f, _, _ in per_file], dtype=np.int64), sizes)
        ordinals = np.arange(len(hashes), dtype=np.int64) - np.repeat(
            np.cumsum(sizes, dtype=np.int64) - sizes, sizes
        )
        families = np.repeat(_families(per_file), sizes)
        order = np.lexsort((families, hashes))
        hashes, owners, ordinals, marks, families = (
            hashes[order],
            owners[order],
            ordinals[order],
            marks[order],
            families[order],
        )
        # per fingerprint: how many files hold it, and how many families (near-copies once)
        starts = np.ones(len(hashes), dtype=bool)
        starts[1:] = hashes[1:] != hashes[:-1]
        joins = starts.copy()
        joins[1:] |= families[1:] != families[:-1]
        first = np.flatnonzero(starts)
        counts = np.diff(np.append(first, len(hashes)))
        held = np.add.reduceat(joins, first) if len(first) else np.zeros(0, np.int64)
        keep = np.repeat(held <= max_files, counts)
        spread = np.repeat(held, counts)
        self.suppressed = int(np.count_nonzero(held > max_files))
        if public is not None:  # public code (an allow-list label) is nobody's secret
            known = np.isin(hashes, public)
            self.suppressed += len(np.unique(hashes[known & keep]))
            keep &= ~known
        self.hashes: U32 = hashes[keep]
        self.owners: I64 = owners[keep]
        # where each fingerprint stands among its file's fingerprints (they are stored in order)
        self.ordinals: I64 = ordinals[keep]
        self.tags: U8 = marks[keep]
        # how many files hold each fingerprint (near-copies once): a k-gram found in several
        # counts for less
        self.spread: I64 = spread[keep]

    def __len__(self) -> int:
        return len(self.hashes)

    def lookup(self, query: U32) -> tuple[I64, I64, I64, U8, I64]:
        """(index into `query`, file id, ordinal in the file, tag, files holding it) for every
        occurrence of a query hash in the index."""
        left = np.searchsorted(self.hashes, query, side="left")
        right = np.searchsorted(self.hashes, query, side="right")
        counts = right - left
        hit = np.flatnonzero(counts)
        if len(hit) == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty, np.zeros(0, np.uint8), empty
        reps = counts[hit]
        which = np.repeat(hit, reps)
        firsts = np.repeat(left[hit], reps)
        steps = np.arange(len(which)) - np.repeat(np.cumsum(reps) - reps, reps)
        at = firsts + steps
        return which, self.owners[at], self.ordinals[at], self.tags[at], self.spread[at]

    def match(self, text: str) -> list[Match]:
        """Regions of `text` that come from indexed files, best file per region.

        A paste that begins inside a docstring would have its code read as a string and its
        docstrings as code: such a paste is read as code from its first triple quote on (both
        ways where it cannot be told; the better reading counts).
        """
        head, sure = _begins_inside_string(text)
        words = prose_tokens(text)
        streams: list[tuple[Channel, Tokens]] = [(PROSE, words), (PROSE_LINES, words)]
        if not head or not sure:
            code = code_tokens(text)
            streams += [(CODE, code), (CODE_LINES, code)]
        if head:
            rest = code_tokens(" " * head + text[head:])  # blanked, so spans stay in place
            streams += [(CODE, rest), (CODE_LINES, rest)]
        return _best_per_region(self._found(streams))

    def _found(self, streams: Iterable[tuple[Channel, Tokens]]) -> list[Match]:
        looked = [
            found
            for reading, (channel, tokens) in enumerate(streams)
            if (found := self._lookup(channel, tokens, reading)) is not None
        ]
        owners = _candidates(looked)
        hits: dict[int, list[Hit]] = defaultdict(list)
        similarity: dict[int, float] = defaultdict(float)
        for found in looked:
            found.collect(owners, hits, similarity)
        matches: list[Match] = []
        for file_id, file_hits in hits.items():
            if _enough(file_hits):
                matches.extend(_regions(file_id, file_hits, similarity[file_id]))
        return matches

    def _lookup(self, channel: Channel, tokens: Tokens, reading: int) -> ChannelLookup | None:
        if channel.short:
            hashes, written, tokens = line_kgrams(tokens, channel)
        else:
            hashes, written = kgram_hashes(tokens, channel)
        if len(hashes) == 0 or len(self.hashes) == 0:
            return None
        short = stored(hashes)
        counted = np.flatnonzero(hashes != SKIPPED)
        if len(counted) == 0:
            return None
        where, files, ordinals, marks, spread = self.lookup(short[counted])
        if len(where) == 0:
            return None
        where = counted[where]
        exact = tags(written[where]) == marks
        rarity = spread.astype(np.float64) ** -channel.rarity
        return ChannelLookup(channel, reading, tokens, hashes, where, files, ordinals, exact,
                             rarity, spread)  # fmt: skip


def _candidates(looked: list[ChannelLookup]) -> I64:
    """The files whose shared fingerprints could reach a match: each distinct one counted at
    what it weighs (exact or renamed, rarity; beside another of the file's, at least a share of
    a run), order not yet checked, so the sum bounds what `_enough` can find (most files share
    a k-gram or two by chance or idiom: they are dropped before the Python loop); at most
    MAX_CANDIDATES, those whose fingerprints alone weigh most."""
    owners: list[I64] = []
    bounds: list[npt.NDArray[np.float64]] = []
    ranks: list[npt.NDArray[np.float64]] = []
    for found in looked:
        channel = found.channel
        weights = found.rarity / np.where(found.exact, channel.min_exact, channel.min_matches)
        bound = weights
        if channel.run:  # a fingerprint beside another of the file's may belong to a run
            places = found.files * (1 << 32) + found.ordinals
            beside = np.isin(places + 1, places) | np.isin(places - 1, places)
            bound = np.where(beside, np.maximum(weights, 1 / channel.run), weights)
        pairs = found.files * (1 << 32) + stored(found.hashes[found.where]).astype(np.int64)
        order = np.lexsort((-bound, pairs))  # per (file, fingerprint) the heaviest first
        ordered = pairs[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        first = order[starts]
        owners.append(found.files[first])
        bounds.append(bound[first])
        ranks.append(weights[first])
    if not owners:
        return np.zeros(0, np.int64)
    files, at = np.unique(np.concatenate(owners), return_inverse=True)
    evidence = np.bincount(at, weights=np.concatenate(bounds))
    rank = np.bincount(at, weights=np.concatenate(ranks))
    enough = evidence >= 1.0 - 1e-9
    files, rank = files[enough], rank[enough]
    if len(files) > MAX_CANDIDATES:  # bounds the time per prompt
        files = files[np.argsort(-rank, kind="stable")[:MAX_CANDIDATES]]
    return files


@dataclass(frozen=True, slots=True)
class ChannelLookup:
    """Where one reading's k-grams of a text occur in the index (see MemoryIndex.lookup)."""

    channel: Channel
    reading: int  # which token stream of the text (a text may be read as code two ways)
    tokens: Tokens
    hashes: npt.NDArray[np.uint64]
    where: I64
    files: I64
    ordinals: I64
    exact: npt.NDArray[np.bool_]  # the k-gram as written agrees too (tags), not only renamed
    rarity: npt.NDArray[np.float64]  # 1 / files holding it, to the channel's power
    spread: I64  # how many files hold it

    def collect(
        self, owners: I64, hits: dict[int, list[Hit]], similarity: dict[int, float]
    ) -> None:
        """Add the hits in the candidate files `owners`, and each one's similarity."""
        channel, tokens, hashes = self.channel, self.tokens, self.hashes
        keep = np.isin(self.files, owners)
        where, files = self.where[keep], self.files[keep]
        if len(where) == 0:
            return
        short = stored(hashes)
        weights = self.rarity[keep].tolist()
        exact = self.exact[keep].tolist()
        held = self.spread[keep].tolist()
        own = set(stored(hashes[selected(tokens, hashes, channel)]).tolist()) or {-1}
        starts = tokens.starts[where].tolist()
        ends = tokens.ends[where + channel.k - 1].tolist()
        matched_own: dict[int, set[int]] = defaultdict(set)
        for i, value, file_id, ordinal, same, start, end, weight, files_holding in zip(
            where.tolist(), short[where].tolist(), files.tolist(), self.ordinals[keep].tolist(),
            exact, starts, ends, weights, held, strict=True,
        ):  # fmt: skip
            hit = Hit(start, end, value, channel, self.reading, i, ordinal, same, weight,
                      files_holding)  # fmt: skip
            hits[file_id].append(hit)
            if value in own:
                matched_own[file_id].add(value)
        for file_id, values in matched_own.items():
            similarity[file_id] = max(similarity[file_id], len(values) / len(own))


def _families(per_file: Sequence[tuple[int, U32, U8]]) -> I64:
    """A family number per file: near-copies of one text (two versions of a changelog, a
    document saved twice with an edit) share their FAMILY_SKETCH smallest fingerprints and
    count as one file where commonness is weighed, as identical copies do. (A MinHash sketch:
    two files agree on all four about as often as the fourth power of the share of
    fingerprints they have in common: 0.81 for 95 %, 0.01 for 30 %.)"""
    sketches: dict[bytes, int] = {}
    out = np.arange(len(per_file), dtype=np.int64)
    for i, (_, hashes, _) in enumerate(per_file):
        if len(hashes) >= FAMILY_MIN_FINGERPRINTS:
            low = np.sort(np.partition(hashes, FAMILY_SKETCH - 1)[:FAMILY_SKETCH])
            out[i] = sketches.setdefault(low.tobytes(), i)
    return out


def _begins_inside_string(text: str) -> tuple[int, bool]:
    """(where the string a text seems to begin inside ends, or 0; whether that is sure). The
    first triple quote closes a string when text stands before it on its line (a docstring's
    last words); it opens one after `=`, `(`, `return`, with text after it on its line, or
    alone on a line after a `def ...:` line; alone at the top it could be either."""
    first = _TRIPLE_QUOTE.search(text)
    if first is None:
        return 0, True
    line_start = text.rfind("\n", 0, first.start()) + 1
    line_end = text.find("\n", first.end())
    before = text[line_start : first.start()].strip()
    after = text[first.end() : None if line_end < 0 else line_end].strip()
    if before:
        return (0, True) if _OPENS_STRING.search(before) else (first.end(), True)
    if after:
        return 0, True
    previous = text[:line_start].rstrip()
    if not previous:
        return first.end(), False
    return (0, True) if previous.endswith((":", "(", "[", "=", ",")) else (first.end(), True)


class Hit(NamedTuple):
    """One k-gram of the text found in a file: its characters, hash, channel, its token
    position in the text and the fingerprint's ordinal in the file."""

    start: int
    end: int
    value: int
    channel: Channel
    reading: int
    position: int
    ordinal: int
    exact: bool  # the k-gram as written matches too (its tag agrees), not only renamed
    weight: float  # 1 for a fingerprint of this file alone, less when other files hold it
    held: int  # how many files hold it (near-copies once)


def _enough(hits: list[Hit]) -> bool:
    """Do a file's shared fingerprints make a match? Each channel's heaviest chain (distinct
    fingerprints in the same order in the text and in the file, no more of them in the file
    than there are tokens between them in the text) counts, the channel's other shared
    fingerprints a third, and the channels add up: a copied function with its docstring is
    evidence in both (of two code readings, the better one). A fingerprint weighs 1/min_exact
    of its channel when its tag agrees too (an exact copy), else 1/min_matches, times its
    rarity weight; a match needs 1, and so does a run of the channel's `run` fingerprints next
    to each other in the file (see `_chain`). A reading that shares only renamed shapes that
    many files take counts nothing (see `_only_common_shapes`)."""
    readings: dict[tuple[str, int], list[Hit]] = defaultdict(list)
    for h in hits:
        readings[h.channel.name, h.reading].append(h)
    weights: dict[str, float] = defaultdict(float)
    for (name, _), group in readings.items():
        if _only_common_shapes(group):
            continue
        weights[name] = max(weights[name], _chain(group, 1.0))
        if sum(weights.values()) >= 1.0 - 1e-9:
            return True
    return False


def _only_common_shapes(hits: list[Hit]) -> bool:
    """Is this evidence nothing but shapes that many files take once renamed: no fingerprint
    agrees as written, and every one is held (renamed) by more than the channel's
    renamed_common files (a run of typed parameters, an idiom that many company files repeat)?
    A renamed copy of the file itself shares at least one rarer one."""
    limit = hits[0].channel.renamed_common
    return bool(limit) and all(not h.exact and h.held > limit for h in hits)


def _chain(hits: list[Hit], need: float) -> float:
    """The evidence of one reading: its heaviest chain in the file's order (stops once that
    reaches `need`), plus OUT_OF_ORDER of what its other shared fingerprints weigh; a run of
    the channel's `run` fingerprints next to each other in the file is `need` at once."""
    channel = hits[0].channel
    weighed: dict[tuple[int, int, int], float] = {}
    for h in hits:
        w = h.weight / (channel.min_exact if h.exact else channel.min_matches)
        key = (h.position, h.ordinal, h.value)
        weighed[key] = max(w, weighed.get(key, 0.0))
    distinct = sorted(weighed.items())[:CHAIN_LIMIT]
    best = [w for _, w in distinct]
    run = [1] * len(distinct)  # fingerprints next to each other in the file, ending here
    for i, ((p, o, v), w) in enumerate(distinct):
        for j in range(max(0, i - CHAIN_REACH), i):
            (q, r, u), _ = distinct[j]
            if u != v and r < o <= r + (p - q):
                best[i] = max(best[i], best[j] + w)
                if o == r + 1:
                    run[i] = max(run[i], run[j] + 1)
        if best[i] >= need - 1e-9 or run[i] == channel.run:
            return max(best[i], need)
    chain = max(best, default=0.0)
    shared: dict[int, float] = {}
    for (_, _, v), w in distinct:
        shared[v] = max(w, shared.get(v, 0.0))
    return chain + OUT_OF_ORDER * max(0.0, sum(shared.values()) - chain)


def _regions(file_id: int, hits: list[Hit], similarity: float) -> list[Match]:
    """Merge one file's matched stretches into regions; keep those that are enough alone."""
    out: list[Match] = []
    hits.sort(key=lambda h: (h.start, h.end))
    regions: list[tuple[list[Hit], int]] = []
    region, end = [hits[0]], hits[0].end
    for h in hits[1:]:
        if h.start <= end + MERGE_GAP:
            end = max(end, h.end)
            region.append(h)
            continue
        regions.append((region, end))
        region, end = [h], h.end
    regions.append((region, end))
    for region, end in regions:
        if len(regions) == 1 or _enough(region):  # one region: the file's check was its own
            matched = len({h.value for h in region})
            first = min(h.start for h in region)
            out.append(Match(file_id, first, end, matched, min(1.0, similarity)))
    return out


def _best_per_region(found: list[Match]) -> list[Match]:
    """Where regions of several files overlap (copies of one file), keep the best match."""
    kept: list[Match] = []
    for m in sorted(found, key=lambda m: (-m.matched, -m.similarity, m.file_id)):
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)
