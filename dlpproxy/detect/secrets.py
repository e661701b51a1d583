"""The secrets detector: credentials and keys found by rule packs, in linear time.

One hyperscan pass over all rule keywords picks the rules a text can trigger (the gitleaks
keyword pre-filter, but for all rules at once); on texts of 64 KiB and more a second pass, over
all rule regexes in hyperscan's prefilter mode, drops the rules that cannot match anywhere. Only
the remaining rules' RE2 regexes run, over the UTF-8 bytes of the text, so the cost is linear in
the text and no regex can backtrack. Findings span the secret (the rule's secret group), pass
the rule's entropy floor and no allowlist.

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
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import re2

from dlpproxy.detect.hyperscan_db import HyperscanDb, char_offsets, hyperscan
from dlpproxy.detect.rulepack import Allowlist, Excuses, RulePack, SecretRule, load_pack
from dlpproxy.errors import RulePackError
from dlpproxy.settings import Settings
from dlpproxy.types import SEVERITY_RANK, Finding

log = logging.getLogger(__name__)
_warned_no_hyperscan = False

# Below this size a text skips the regex prefilter: running the keyword-selected rules over a
# short prompt costs microseconds, less than the prefilter's one-off compile is worth.
PREFILTER_FROM_BYTES = 64 * 1024


def _hyperscan_ready() -> bool:
    global _warned_no_hyperscan
    if hyperscan is None and not _warned_no_hyperscan:
        _warned_no_hyperscan = True
        log.warning("hyperscan not importable: secret keywords use substring tests (slower)")
    return hyperscan is not None


class KeywordIndex:
    """Which rules a text can trigger: rules without keywords always, others if a keyword occurs.

    All keywords, escaped, go into one caseless UTF-8 hyperscan database scanned once per text
    (hyperscan folds case in every script there, as `str.lower` does). Text that is not valid
    UTF-8 (lone surrogates), and every text when hyperscan is missing, gets substring tests on
    the lowercased text instead.
    """

    def __init__(self, rules: Sequence[SecretRule]):
        self.always = tuple(i for i, r in enumerate(rules) if not r.keywords)
        owners: dict[str, list[int]] = {}
        for i, rule in enumerate(rules):
            for kw in rule.keywords:
                owners.setdefault(kw.lower(), []).append(i)
        self._owners = [(k, tuple(v)) for k, v in owners.items()]
        self._hs: HyperscanDb | None = None
        if self._owners and _hyperscan_ready():
            flags = (
                hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_UTF8
            )
            self._hs = HyperscanDb([re.escape(k).encode() for k, _ in self._owners], flags)

    def candidates(self, text: str, data: bytes, valid: bool = True) -> set[int]:
        """Indices of the rules to run on `text`, whose UTF-8 form is `data` (`valid` or not)."""
        chosen = set(self.always)
        if self._hs is not None and valid:
            for kw_id in self._hs.ids(data):
                chosen.update(self._owners[kw_id][1])
        elif self._owners:
            lowered = text.lower()
            for kw, owners in self._owners:
                if kw in lowered:
                    chosen.update(owners)
        return chosen


# Regex syntax whose meaning hyperscan (without UCP) may not share with RE2: Unicode classes and
# code points, RE2's any-byte \C.
_UNICODE_SYNTAX = re2.compile(r"\\[pPC]|\\x\{")
# RE2's \S admits a vertical tab, PCRE's (hence hyperscan's) does not; text holding one skips
# the regex prefilter. (Unicode case folding agrees: hyperscan folds K/s to the Kelvin sign and
# long s in UTF-8 mode, as RE2 does.)
_DISAGREEING_CHARS = ("\x0b",)


_REPEAT = re2.compile(r"\{(\d+)(?:,\d*)?\}")


def widen_repeats(pattern: str, cap: int = 8) -> str:
    """`pattern` with each counted repeat {m}, {m,} or {m,n} opened to {min(m, cap),}.

    The result matches a superset of the original, which is all a prefilter needs, and spares
    hyperscan the bounded repeats (`[^{}]{0,1000}?`) that cost it tens of seconds to compile.
    Escapes and character classes (POSIX ones included) are copied untouched.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        step = 2 if ch == "\\" else 1
        if in_class and pattern.startswith("[:", i):
            step = max(pattern.find(":]", i + 2) + 2 - i, 1)
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            step += pattern.startswith("^", i + 1)
            step += pattern.startswith("]", i + step)
        elif ch == "{" and (found := _REPEAT.match(pattern[i:])):
            low = min(int(found.group(1)), cap)
            out.append(f"{{{low},}}" if low else "*")
            i += found.end()
            continue
        out.append(pattern[i : i + step])
        i += step
    return "".join(out)


class RegexPrefilter:
    """Which rules can match at all: all rule regexes in one hyperscan database, prefilter mode.

    Prefilter mode over-approximates each regex, so a rule it rules out cannot match and its RE2
    pass is skipped; RE2 still decides every span. Counted repeats are widened first (see
    `widen_repeats`). Regexes hyperscan cannot take, or might read differently (non-ASCII,
    Unicode classes), are left out and always run. Compiling a 300-rule pack takes about a second.
    """

    def __init__(self, rules: Sequence[SecretRule]):
        fitting = [
            i
            for i, r in enumerate(rules)
            if r.regex.pattern.isascii() and not _UNICODE_SYNTAX.search(r.regex.pattern)
        ]
        flags = (
            hyperscan.HS_FLAG_PREFILTER
            | hyperscan.HS_FLAG_SINGLEMATCH
            | hyperscan.HS_FLAG_UTF8
            | hyperscan.HS_FLAG_ALLOWEMPTY
        )
        patterns = {i: widen_repeats(rules[i].regex.pattern).encode() for i in fitting}
        try:
            self._hs: HyperscanDb | None = HyperscanDb(list(patterns.values()), flags)
        except hyperscan.error:
            fitting = [i for i in fitting if _compiles(patterns[i], flags)]
            self._hs = HyperscanDb([patterns[i] for i in fitting], flags) if fitting else None
        self._rule_of = fitting
        self.unfiltered = frozenset(range(len(rules))) - frozenset(fitting)

    def possible(self, text: str, data: bytes) -> frozenset[int] | None:
        """Rules that may match `text` (UTF-8 `data`, valid), or None when all must run."""
        if self._hs is None or any(ch in text for ch in _DISAGREEING_CHARS):
            return None
        return self.unfiltered | {self._rule_of[h] for h in self._hs.ids(data)}


def _compiles(pattern: bytes, flags: int) -> bool:
    try:
        HyperscanDb([pattern], flags)
    except hyperscan.error as exc:
        log.info("secret rule regex left out of the hyperscan prefilter (%s): %r", exc, pattern)
        return False
    return True


class SecretsDetector:
    """Finds secrets with the rules of one or more packs (later packs override by rule id)."""

    name = "secrets"

    def __init__(
        self, packs: Sequence[RulePack], prefilter_from: int | None = PREFILTER_FROM_BYTES
    ):
        """`prefilter_from`: texts of at least this many UTF-8 bytes go through the regex
        prefilter (compiled on first use); None never (every keyword-selected rule runs)."""
        chosen: dict[str, tuple[SecretRule, tuple[Allowlist, ...]]] = {}
        for pack in packs:
            for rule in pack.rules:
                if rule.id in chosen:
                    log.info("%s: rule '%s' replaces an earlier one", pack.source, rule.id)
                chosen[rule.id] = (rule, rule.allowlists + pack.allowlists)
        if not chosen:
            raise RulePackError(", ".join(p.source for p in packs) or "-", "no secret rules")
        self.rules: tuple[SecretRule, ...] = tuple(r for r, _ in chosen.values())
        self._excuses = tuple(Excuses.merge(a) for _, a in chosen.values())
        self.categories = frozenset(r.category for r in self.rules)
        self._index = KeywordIndex(self.rules)
        self._prefilter_from = prefilter_from if _hyperscan_ready() else None
        self._prefilter: RegexPrefilter | None = None
        self._prefilter_lock = threading.Lock()

    @classmethod
    def from_paths(cls, paths: Iterable[Path | str]) -> SecretsDetector:
        return cls([load_pack(p) for p in paths])

    def candidate_rules(self, text: str) -> tuple[str, ...]:
        """Ids of the rules the keyword pre-filter lets run on `text`."""
        data, valid = _utf8(text)
        return tuple(self.rules[i].id for i in sorted(self._index.candidates(text, data, valid)))

    def rules_to_run(self, text: str) -> tuple[str, ...]:
        """Ids of the rules past both pre-filters: a keyword occurs, and the regex may match."""
        data, valid = _utf8(text)
        return tuple(self.rules[i].id for i in self._selected(text, data, valid))

    def _selected(self, text: str, data: bytes, valid: bool) -> list[int]:
        chosen = self._index.candidates(text, data, valid)
        least = self._prefilter_from
        if chosen and valid and least is not None and len(data) >= least:
            possible = self._regex_prefilter().possible(text, data)
            if possible is not None:
                chosen &= possible
        return sorted(chosen)

    def _regex_prefilter(self) -> RegexPrefilter:
        with self._prefilter_lock:
            if self._prefilter is None:
                self._prefilter = RegexPrefilter(self.rules)
            return self._prefilter

    def quick(self, text: str) -> list[Finding]:
        """The whole scan is linear-time (hyperscan + RE2): always quick."""
        return self.detect(text)

    def detect(self, text: str) -> list[Finding]:
        if not text:
            return []
        data, valid = _utf8(text)
        best: dict[tuple[int, int], int] = {}
        for i in self._selected(text, data, valid):
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
        floor = self.rules[i].entropy
        if floor is not None and shannon_entropy(_decode(data[start:end])) < floor:
            return False
        return not self._excuses[i].excuse(data, span, (start, end))

    def _findings(self, text: str, data: bytes, best: dict[tuple[int, int], int]) -> list[Finding]:
        to_char = char_offsets(data, {o for span in best for o in span}, len(text))
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


def shannon_entropy(value: str) -> float:
    """Shannon entropy in bits per character (gitleaks' measure for its `entropy` floor)."""
    if not value:
        return 0.0
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in Counter(value).values())


def _utf8(text: str) -> tuple[bytes, bool]:
    """The UTF-8 bytes of `text`, and whether they are valid (lone surrogates pass through)."""
    try:
        return text.encode("utf-8"), True
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass"), False


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


def build(settings: Settings) -> SecretsDetector:
    """The secrets detector from `rules/secrets.yaml` plus `settings.extra_secret_packs`."""
    main = settings.rules_dir / "secrets.yaml"
    if not main.is_file():
        raise RulePackError(str(main), "secret rule pack not found (set DLPPROXY_RULES_DIR)")
    return SecretsDetector.from_paths([main, *settings.extra_secret_packs])


__all__ = ["KeywordIndex", "SecretsDetector", "build", "shannon_entropy"]
