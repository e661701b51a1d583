"""The secrets detector: credentials and keys found by rule packs, in linear time.

One hyperscan pass over all rule keywords picks the rules a text can trigger (the gitleaks
keyword pre-filter, but for all rules at once); only those rules' RE2 regexes then run, over the
UTF-8 bytes of the text, so the cost is linear in the text and no regex can backtrack. Findings
span the secret (the rule's secret group), pass the rule's entropy floor and no allowlist.

Rule pack format (`rules/secrets.yaml`; gitleaks TOML is accepted as well)::

    version: 1
    allowlist: ['(?i)^(?:x{4,}|<[^>]*>)$']   # RE2 regexes on the secret: a match drops it
    stopwords: [example, changeme]            # a secret containing one (any case) is dropped
    rules:
      - id: aws-access-key-id                 # unique, [a-z0-9-]+
        description: AWS access key ID
        type: aws_access_key                  # finding type, [a-z0-9_]+
        regex: '\\b((?:AKIA|ASIA)[A-Z2-7]{16})\\b'   # RE2 syntax (= Go/gitleaks)
        secret_group: 1                       # optional: default 1 if the regex has a group, else 0
        keywords: [akia, asia]                # lowercase; the rule runs only if one occurs
        entropy: 3.0                          # optional: min Shannon bits/char of the secret
        allowlist: ['(?i)example']            # optional, per rule
        stopwords: []                         # optional, per rule
        severity: critical                    # low|medium|high|critical
        category: secret                      # optional, default secret
        score: 1.0                            # optional, default 1.0; 0.5-0.8 for generic rules
        examples: {positive: [...], negative: [...]}   # checked by the test-suite

When two rules find the same span, the higher score wins (then the higher severity, then the
earlier rule), so a specific format beats a generic assignment rule. Across packs, a rule with
the id of an earlier rule replaces it, so a site pack can retune a shipped rule.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dlpproxy.detect.rulepack import Allowlist, RulePack, SecretRule, load_pack
from dlpproxy.errors import RulePackError
from dlpproxy.settings import Settings
from dlpproxy.types import SEVERITY_RANK, Finding

try:
    import hyperscan
except ImportError:  # pragma: no cover - exercised only where the wheel is missing
    hyperscan = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
_warned_no_hyperscan = False


class KeywordIndex:
    """Which rules a text can trigger: rules without keywords always, others if a keyword occurs.

    ASCII keywords go into one caseless literal hyperscan database scanned once per text;
    keywords with other letters (hyperscan folds ASCII case only) and the fallback without
    hyperscan use substring tests on the lowercased text.
    """

    def __init__(self, rules: Sequence[SecretRule]):
        self.always = tuple(i for i, r in enumerate(rules) if not r.keywords)
        owners: dict[str, list[int]] = {}
        for i, rule in enumerate(rules):
            for kw in rule.keywords:
                owners.setdefault(kw.lower(), []).append(i)
        self._db: Any = None
        self._local = threading.local()
        hs_words = [k for k in owners if k.isascii()] if _hyperscan_ready() else []
        self._hs_owners = [tuple(owners[k]) for k in hs_words]
        self._plain = [(k, tuple(v)) for k, v in owners.items() if k not in set(hs_words)]
        if hs_words:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(
                expressions=[k.encode() for k in hs_words],
                ids=list(range(len(hs_words))),
                elements=len(hs_words),
                flags=hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH,
                literal=True,
            )

    def candidates(self, text: str, data: bytes) -> list[int]:
        """Indices (in rule order) of the rules to run on `text`, whose UTF-8 form is `data`."""
        chosen = set(self.always)
        if self._db is not None:
            hits: list[int] = []
            self._db.scan(data, match_event_handler=_collect, context=hits, scratch=self._scratch())
            for kw_id in hits:
                chosen.update(self._hs_owners[kw_id])
        if self._plain:
            lowered = text.lower()
            for kw, owners in self._plain:
                if kw in lowered:
                    chosen.update(owners)
        return sorted(chosen)

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._db)
        return scratch


def _collect(kw_id: int, _start: int, _end: int, _flags: int, hits: list[int]) -> None:
    hits.append(kw_id)


def _hyperscan_ready() -> bool:
    global _warned_no_hyperscan
    if hyperscan is None and not _warned_no_hyperscan:
        _warned_no_hyperscan = True
        log.warning("hyperscan not importable: secret keywords use substring tests (slower)")
    return hyperscan is not None


class SecretsDetector:
    """Finds secrets with the rules of one or more packs (later packs override by rule id)."""

    name = "secrets"

    def __init__(self, packs: Sequence[RulePack]):
        chosen: dict[str, tuple[SecretRule, tuple[Allowlist, ...]]] = {}
        for pack in packs:
            for rule in pack.rules:
                if rule.id in chosen:
                    log.info("%s: rule '%s' replaces an earlier one", pack.source, rule.id)
                chosen[rule.id] = (rule, rule.allowlists + pack.allowlists)
        if not chosen:
            raise RulePackError(", ".join(p.source for p in packs) or "-", "no secret rules")
        self.rules: tuple[SecretRule, ...] = tuple(r for r, _ in chosen.values())
        self._allowlists = tuple(a for _, a in chosen.values())
        self.categories = frozenset(r.category for r in self.rules)
        self._index = KeywordIndex(self.rules)

    @classmethod
    def from_paths(cls, paths: Iterable[Path | str]) -> SecretsDetector:
        return cls([load_pack(p) for p in paths])

    def candidate_rules(self, text: str) -> tuple[str, ...]:
        """Ids of the rules the keyword pre-filter lets run on `text`."""
        data = text.encode("utf-8", "surrogatepass")
        return tuple(self.rules[i].id for i in self._index.candidates(text, data))

    def detect(self, text: str) -> list[Finding]:
        if not text:
            return []
        data = text.encode("utf-8", "surrogatepass")
        best: dict[tuple[int, int], int] = {}
        for i in self._index.candidates(text, data):
            rule = self.rules[i]
            for match in rule.regex.finditer(data):
                start, end = match.span(rule.secret_group)
                if start < 0 or start == end or not self._keeps(i, data, match.span(), start, end):
                    continue
                kept = best.get((start, end))
                if kept is None or _rank(rule) > _rank(self.rules[kept]):
                    best[(start, end)] = i
        return self._findings(text, data, best)

    def detect_batch(self, texts: list[str]) -> list[list[Finding]]:
        return [self.detect(t) for t in texts]

    def _keeps(self, i: int, data: bytes, span: tuple[int, int], start: int, end: int) -> bool:
        """Whether the secret at data[start:end] passes rule i's entropy floor and allowlists."""
        rule = self.rules[i]
        secret = _decode(data[start:end])
        if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
            return False
        return not any(_excuses(a, secret, data, span) for a in self._allowlists[i])

    def _findings(self, text: str, data: bytes, best: dict[tuple[int, int], int]) -> list[Finding]:
        to_char = _char_offsets(data, {o for span in best for o in span}, len(text))
        found = []
        for (start, end), i in sorted(best.items()):
            rule = self.rules[i]
            found.append(
                Finding(
                    start=to_char(start),
                    end=to_char(end),
                    type=rule.type,
                    category=rule.category,
                    detector=self.name,
                    score=rule.score,
                    severity=rule.severity,
                    rule=rule.id,
                )
            )
        return found


def _rank(rule: SecretRule) -> tuple[float, int]:
    return rule.score, SEVERITY_RANK[rule.severity]


def _excuses(allow: Allowlist, secret: str, data: bytes, span: tuple[int, int]) -> bool:
    """Whether `allow` drops this finding (gitleaks semantics: any check, or all with AND)."""
    checks: list[bool] = []
    if allow.regexes:
        if allow.target == "secret":
            target = secret.encode("utf-8", "surrogatepass")
        elif allow.target == "match":
            target = data[span[0] : span[1]]
        else:
            line_start = data.rfind(b"\n", 0, span[0]) + 1
            line_end = data.find(b"\n", span[1])
            target = data[line_start : len(data) if line_end < 0 else line_end]
        checks.append(any(r.search(target) is not None for r in allow.regexes))
    if allow.stopwords:
        lowered = secret.lower()
        checks.append(any(w in lowered for w in allow.stopwords))
    return all(checks) if allow.require_all else any(checks)


def shannon_entropy(value: str) -> float:
    """Shannon entropy in bits per character (gitleaks' measure for its `entropy` floor)."""
    if not value:
        return 0.0
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in Counter(value).values())


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


# Every byte except UTF-8 continuation bytes (0x80-0xBF): deleting them leaves the continuations.
_NOT_CONTINUATION = bytes(range(0x80)) + bytes(range(0xC0, 0x100))


def _char_offsets(data: bytes, offsets: set[int], text_len: int) -> Any:
    """A byte offset -> str offset map for the given offsets (identity for ASCII text).

    A str offset is the byte offset less the continuation bytes before it; counting them
    piecewise between sorted offsets keeps the whole map one pass over the text.
    """
    if len(data) == text_len:
        return int
    table: dict[int, int] = {0: 0}
    last_byte = last_char = 0
    for offset in sorted(offsets):
        piece = data[last_byte:offset]
        last_char += len(piece) - len(piece.translate(None, _NOT_CONTINUATION))
        last_byte = offset
        table[offset] = last_char
    return table.__getitem__


def build(settings: Settings) -> SecretsDetector:
    """The secrets detector from `rules/secrets.yaml` plus `settings.extra_secret_packs`."""
    main = settings.rules_dir / "secrets.yaml"
    if not main.is_file():
        raise RulePackError(str(main), "secret rule pack not found (set DLPPROXY_RULES_DIR)")
    return SecretsDetector.from_paths([main, *settings.extra_secret_packs])


__all__ = ["KeywordIndex", "SecretsDetector", "build", "shannon_entropy"]
