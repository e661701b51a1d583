"""The `pii` detector: our recognisers on presidio, in Korean, Chinese, Arabic, Spanish and
English prompts; checksum look-alikes, presidio's known misfires, offline build, rule-pack errors.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dlpproxy.detect.pii import PiiDetector, build, build_ner
from dlpproxy.detect.pii_rules import load_pii_pack
from dlpproxy.engine import Engine
from dlpproxy.errors import DetectorError, RulePackError
from dlpproxy.settings import Settings
from dlpproxy.types import PII, Finding

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pii() -> PiiDetector:
    return build(Settings())


def _found(detector: PiiDetector, text: str, value: str) -> list[tuple[str, str]]:
    """(type, matched text) of each finding, and a check that `value` is one exact span."""
    findings = detector.detect(text)
    start = text.index(value)
    assert (start, start + len(value)) in {(f.start, f.end) for f in findings}, findings
    return [(f.type, text[f.start : f.end]) for f in findings]


# Sentences written for these tests; every identifier in them validates (see test_validators).
ID_SENTENCES = [
    (
        "ko",
        "회원 정보를 수정해 주세요. 주민번호는 850417-2123456 입니다.",
        "850417-2123456",
        "kr_rrn",
    ),
    ("ko", "신청인 주민등록번호8504172123456로 조회 부탁해요", "8504172123456", "kr_rrn"),
    ("ko", "외국인등록번호: 050417-7123456, 비자 연장 건", "050417-7123456", "kr_arn"),
    (
        "zh",
        "请核对一下，他的身份证号码是11010519491231002X，谢谢。",
        "11010519491231002X",
        "cn_resident_id",
    ),
    (
        "en",
        "The new hire's Chinese ID number is 440304199003073518.",
        "440304199003073518",
        "cn_resident_id",
    ),
    ("es", "Hola, mi DNI es 12345678Z y necesito la factura.", "12345678Z", "es_dni"),
    ("es", "Adjunto el NIE Y7654321G del nuevo empleado.", "Y7654321G", "es_nie"),
    ("es", "Su CURP es GODE561231HDFRRN00, por favor regístrelo.", "GODE561231HDFRRN00", "mx_curp"),
    ("es", "El RFC de la empresa es ABC680524P73.", "ABC680524P73", "mx_rfc"),
    (
        "ar",
        "أرسل الموظف رقم الهوية 1012345672 إلى قسم الموارد البشرية.",
        "1012345672",
        "sa_national_id",
    ),
    ("ar", "رقم الإقامة الخاص بالعامل 2345678912 منتهي.", "2345678912", "sa_iqama"),
    ("en", "Update the Iqama 2345678912 in the HR system.", "2345678912", "sa_iqama"),
    (
        "zh",
        "客户的信用卡号是4539 1488 0343 6467，请帮我写封邮件。",
        "4539 1488 0343 6467",
        "credit_card",
    ),
    ("ko", "카드번호 378282246310005 결제가 안 됩니다", "378282246310005", "credit_card"),
    ("ar", "رقم البطاقة 6011-1111-1111-1117 لا يعمل", "6011-1111-1111-1117", "credit_card"),
    (
        "es",
        "Transfiere a la cuenta IBAN ES91 2100 0418 4502 0005 1332 mañana.",
        "ES91 2100 0418 4502 0005 1332",
        "iban",
    ),
    ("ar", "رقم الآيبان SA0380000000608010167519 للتحويل", "SA0380000000608010167519", "iban"),
    ("en", "Her SSN is 536-22-8705, please keep it private.", "536-22-8705", "us_ssn"),
    (
        "zh",
        "员工邮箱是park.sj@mail.example.co.kr，请通知他。",
        "park.sj@mail.example.co.kr",
        "email",
    ),
    ("ko", "휴대폰 010-2345-6789 로 연락 주세요", "010-2345-6789", "phone"),
    ("zh", "他的手机号是13800138000，明天打给他。", "13800138000", "phone"),
    ("es", "Llámame al teléfono +34 612 345 678 esta tarde.", "+34 612 345 678", "phone"),
    ("es", "Mi celular es +52 55 1234 5678.", "+52 55 1234 5678", "phone"),
    ("ar", "رقم الجوال 0501234567 للتواصل", "0501234567", "phone"),
    ("en", "Call me at (415) 555-0132 tomorrow.", "(415) 555-0132", "phone"),
]


@pytest.mark.parametrize(
    ("lang", "text", "value", "kind"), ID_SENTENCES, ids=[f"{s[3]}-{s[0]}" for s in ID_SENTENCES]
)
def test_identifier_found_with_exact_span_in_local_sentence(
    pii: PiiDetector, lang: str, text: str, value: str, kind: str
) -> None:
    assert (kind, value) in _found(pii, text, value)


def test_saudi_id_in_arabic_indic_digits_is_found_with_its_span(pii: PiiDetector) -> None:
    text = "رقم الهوية ١٠١٢٣٤٥٦٧٢ للموظف"
    assert ("sa_national_id", "١٠١٢٣٤٥٦٧٢") in _found(pii, text, "١٠١٢٣٤٥٦٧٢")


def test_findings_carry_category_detector_rule_and_severity(pii: PiiDetector) -> None:
    [finding] = pii.detect("주민등록번호는 850417-2123456 입니다.")
    assert (finding.category, finding.detector, finding.rule, finding.severity) == (
        PII,
        "pii",
        "kr_rrn",
        "high",
    )


def test_context_word_raises_the_score(pii: PiiDetector) -> None:
    [plain] = pii.detect("ref 850417-2123456")
    [with_context] = pii.detect("주민등록번호 850417-2123456")
    assert with_context.score == pytest.approx(plain.score + 0.35)


LOOK_ALIKES = [
    "주민등록번호는 851317-2123456 입니다.",  # month 13
    "身份证号码是440304199003073519。",  # wrong check character
    "Mi DNI es 12345678A.",  # wrong letter
    "NIE: X1234567M",  # wrong letter
    "CURP GODE561231HDFRRN01",  # wrong check digit
    "رقم الهوية 1012345678",  # fails Luhn
    "card number 4539 1488 0343 6468",  # fails Luhn
    "IBAN DE88 3704 0044 0532 0130 00",  # fails mod 97
    "SSN 666-12-3456",  # area 666 is never issued
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_checksum_invalid_look_alike_is_not_flagged(pii: PiiDetector, text: str) -> None:
    assert pii.detect(text) == []


def test_eight_digits_before_spanish_word_y_are_not_a_dni(pii: PiiDetector) -> None:
    # 12345670 mod 23 gives the control letter Y; the lowercase word "y" (and) is not it.
    assert pii.detect("Pedí 12345670 y 5 cajas más.") == []


def test_bare_ten_digits_passing_luhn_need_a_context_word(pii: PiiDetector) -> None:
    assert pii.detect("Ticket 1012345672 was closed yesterday.") == []


def test_order_number_in_korean_prompt_is_not_a_phone(pii: PiiDetector) -> None:
    assert pii.detect("주문번호 13800138000 배송 상태 알려줘") == []


def test_card_digits_inside_grouped_iban_are_not_a_card(pii: PiiDetector) -> None:
    text = "IBAN账号：ES91 2100 0418 4502 0005 1332"
    assert [f.type for f in pii.detect(text)] == ["iban"]


def test_decimal_fraction_digits_are_not_a_phone_or_card(pii: PiiDetector) -> None:
    assert pii.detect("lat 17.0591029968 score 0.588418532678418") == []


def test_us_phone_is_a_phone_not_uk_nhs(pii: PiiDetector) -> None:
    assert [f.type for f in pii.detect("Call 212-555-0184 today")] == ["phone"]


def test_eight_ones_are_not_a_date(pii: PiiDetector) -> None:
    assert pii.detect("reference 1111 1111 from the ticket") == []


def test_truncated_name_is_not_a_url(pii: PiiDetector) -> None:
    assert pii.detect("thanks to john.sm for the review") == []


def test_batch_gives_the_same_findings_as_one_by_one(pii: PiiDetector) -> None:
    texts = [s[1] for s in ID_SENTENCES[:6]] + ["nothing to see here"]
    assert pii.detect_batch(texts) == [pii.detect(t) for t in texts]


def test_build_and_scan_work_offline_without_warnings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    caplog.set_level(logging.DEBUG)
    detector = build(Settings())
    findings = detector.detect("mail park.sj@mail.example.co.kr, 카드 4539-1488-0343-6467")
    assert [f.type for f in findings] == ["email", "credit_card"]
    assert [r.getMessage() for r in caplog.records if r.levelno > logging.INFO] == []


def test_servers_log_no_presidio_chatter_at_info() -> None:
    """A server logs at INFO (the gateway; mitmproxy's log): importing and building the pii
    detector there adds no presidio line (its import-time device probe logs at INFO)."""
    code = (
        "import logging; logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')\n"
        "from dlpproxy.detect import build_detector\n"
        "from dlpproxy.settings import Settings\n"
        "det = build_detector('pii', Settings())\n"
        "print(len(det.detect('mail park.sj@mail.example.co.kr')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "1"
    assert "presidio" not in done.stderr, done.stderr


def test_missing_spacy_pipeline_is_a_detector_error() -> None:
    with pytest.raises(DetectorError, match="not installed"):
        build(Settings(spacy_model="xx_no_such_pipeline"))


def _pack(tmp_path: Path, recogniser: str) -> Path:
    path = tmp_path / "pii.yaml"
    path.write_text("version: 1\nrecognisers:\n" + recogniser, encoding="utf-8")
    return path


def test_unknown_validator_names_file_line_and_rule(tmp_path: Path) -> None:
    path = _pack(
        tmp_path,
        "  - name: id_x\n    type: x\n    severity: high\n    validator: mod11\n"
        "    patterns: [{name: p, regex: '\\d{9}', score: 0.5}]\n",
    )
    with pytest.raises(RulePackError, match=r"pii\.yaml:3: rule 'id_x': unknown validator 'mod11'"):
        load_pii_pack(path)


def test_bad_regex_names_the_pattern(tmp_path: Path) -> None:
    path = _pack(
        tmp_path,
        "  - name: id_x\n    type: x\n    severity: high\n"
        "    patterns:\n      - {name: broken, regex: '(\\d{9}', score: 0.5}\n",
    )
    with pytest.raises(
        RulePackError, match=r"pii\.yaml:7: rule 'id_x': pattern 'broken': bad regex"
    ):
        load_pii_pack(path)


def test_misspelt_field_is_an_error(tmp_path: Path) -> None:
    path = _pack(
        tmp_path,
        "  - name: id_x\n    type: x\n    severity: high\n    contxt: {en: [id]}\n"
        "    patterns: [{name: p, regex: '\\d{9}', score: 0.5}]\n",
    )
    with pytest.raises(RulePackError, match="unknown field 'contxt'"):
        load_pii_pack(path)


def test_shipped_pack_loads_with_every_finding_type_named_in_the_design() -> None:
    pack = load_pii_pack(Settings().rules_dir / "pii.yaml")
    expected = {"kr_rrn", "kr_arn", "cn_resident_id", "es_dni", "es_nie", "mx_curp", "mx_rfc",
                "sa_national_id", "sa_iqama", "iban", "credit_card", "us_ssn", "email",
                "phone"}  # fmt: skip
    assert {rule.type for rule in pack.rules} == expected


def test_ner_finds_person_and_place() -> None:
    ner = build_ner(Settings())
    text = "John Smith flew from Paris to Berlin on Monday."
    found = [(f.type, text[f.start : f.end]) for f in ner.detect(text)]
    assert found == [("person", "John Smith"), ("location", "Paris"), ("location", "Berlin")]


def test_finding_offsets_are_python_string_indices(pii: PiiDetector) -> None:
    text = "😀😀 주민번호 850417-2123456"
    [finding] = pii.detect(text)
    assert finding == Finding(
        start=text.index("850417"),
        end=text.index("850417") + 14,
        type="kr_rrn",
        category=PII,
        detector="pii",
        score=finding.score,
        severity="high",
        rule="kr_rrn",
    )


def test_text_over_spacys_length_limit_is_scanned_in_chunks(pii: PiiDetector) -> None:
    filler = "ordinary words of a long pasted log line, nothing personal here. " * 20_000
    tail = " 주민등록번호 900101-1234568"
    text = filler + tail
    assert len(text) > 1_000_000
    found = [(f.type, text[f.start : f.end]) for f in pii.detect(text)]
    assert ("kr_rrn", "900101-1234568") in found


def test_identifier_on_a_chunk_boundary_is_found_once(pii: PiiDetector) -> None:
    from dlpproxy.detect.pii import CHUNK

    head = "x " * ((CHUNK - 10) // 2)
    text = head + "mail jiwoo.park@example-corp.co.kr " + "y " * 40_000
    found = [f for f in pii.detect(text) if f.type == "email"]
    assert [text[f.start : f.end] for f in found] == ["jiwoo.park@example-corp.co.kr"]


def test_memory_stays_flat_once_the_working_vocabulary_is_learned() -> None:
    """The first `learn_words` new words are kept; after that, words first seen in a scan are
    freed when it ends (spaCy memory zone), so the string store stays put."""
    fresh = build(Settings())
    fresh._zone.learn_words = 20
    strings = fresh.analyzer.nlp_engine.nlp["en"].vocab.strings  # type: ignore[attr-defined]
    before = len(strings)
    for n in range(10):  # learning: kept for good
        fresh.detect(f"ticket zq{n}x{n * 7919} for wq{n}y at a{n}.b@example.com")
    assert not fresh._zone.learning
    learned = len(strings)
    assert learned - before >= 20
    for n in range(10, 210):
        text = f"ticket zq{n}x{n * 7919} for wq{n}y{n * 104729} at a{n}.b@example.com"
        found = fresh.detect(text)
        assert [f.type for f in found] == ["email"]
    assert len(strings) - learned < 50, "new words were kept after the scans"


def test_pipeline_is_reloaded_after_too_many_new_words_and_keeps_working() -> None:
    fresh = build(Settings())
    fresh._zone.learn_words = 0
    fresh._zone.reload_after = 500
    # a candidate every 20 words, so presidio (and its tokenizer) sees the whole text
    text = " ".join(
        f"w{n}q{n * 31}x" + (" a.b@example.com" if n % 20 == 0 else "") for n in range(700)
    )
    assert {f.type for f in fresh.detect(text)} == {"email"}
    assert fresh._zone.reloads == 1
    assert [f.type for f in fresh.detect("call x.y@example.com")] == ["email"]


def test_texts_without_any_pattern_candidate_skip_presidio(pii: PiiDetector) -> None:
    """The hyperscan prefilter: no candidate, no presidio call; a candidate runs presidio."""
    calls: list[str] = []
    original = pii.analyzer.analyze

    def counting(text: str, *args: object, **kwargs: object) -> object:
        calls.append(text)
        return original(text, *args, **kwargs)  # type: ignore[arg-type]

    pii.analyzer.analyze = counting  # type: ignore[method-assign]
    try:
        assert pii.detect("The roadmap moved by a week; version 3.12 ships in May.") == []
        assert calls == []
        assert [f.type for f in pii.detect("write to minji@example.com")] == ["email"]
        assert len(calls) == 1
        assert [
            [f.type for f in fs] for fs in pii.detect_batch(["no data", "a@b.example.com"])
        ] == [
            [],
            ["email"],
        ]
        assert len(calls) == 2
    finally:
        pii.analyzer.analyze = original  # type: ignore[method-assign]


def test_quick_path_runs_presidio_only_on_short_texts(pii: PiiDetector) -> None:
    """The engine runs `quick` on the event loop: [] without a candidate; presidio's own
    findings with one when the text is at most `inline_max_chars` long (digits in other scripts
    folded to ASCII as in `detect`); None (go to the pool) when it is longer or the limit is 0."""
    assert pii.inline_max_chars == Settings().pii_inline_max_chars > 0
    assert pii.quick("The roadmap moved by a week; version 3.12 ships in May.") == []
    for text in ("write to minji@example.com", "주민번호 ９００１０１-１２３４５６８"):
        found = pii.quick(text)
        assert found, text
        assert found == pii.detect(text)
    long_text = "write to minji@example.com " + "The notes are in the wiki. " * 200
    assert len(long_text) > pii.inline_max_chars
    assert pii.quick(long_text) is None
    assert pii.quick("No personal data here. " * 200) == []  # no candidate: no limit
    pooled = PiiDetector(pii.analyzer, pii.pack, inline_max_chars=0)
    assert pooled.quick("write to minji@example.com") is None


def test_engine_runs_presidio_inline_for_short_prompts_and_in_the_pool_for_long(
    pii: PiiDetector,
) -> None:
    """Where presidio runs, seen from the thread that calls the analyzer."""
    threads: list[str] = []
    original = pii.analyzer.analyze

    def spy(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    pii.analyzer.analyze = spy  # type: ignore[assignment,method-assign]
    engine = Engine(Settings(), detectors=[pii])
    try:
        short = asyncio.run(engine.scan("write to minji@example.com please"))
        long_text = "write to minji@example.com " + "The notes are in the wiki. " * 200
        long = asyncio.run(engine.scan(long_text))
    finally:
        pii.analyzer.analyze = original  # type: ignore[method-assign]
        engine.close()
    assert [f.type for f in short.findings] == ["email"]
    assert [f.type for f in long.findings] == ["email"]
    assert threads[0] == "MainThread"
    assert threads[1:] and all(name.startswith("dlp-detect") for name in threads[1:])


def test_only_recognisers_whose_patterns_may_match_run(pii: PiiDetector) -> None:
    """The prefilter names the entities that can match; presidio runs just their recognisers,
    and finds what all recognisers together find."""
    assert pii.candidate_entities("no personal data in this sentence at all") == []
    mail_only = pii.candidate_entities("write to minji@example.com")
    assert mail_only == ["EMAIL"]
    assert len(mail_only) < len({r.entity for r in pii.pack.rules})
    texts = [
        "write to minji@example.com about the order",
        "주민등록번호 900101-1234568, 연락처 010-2345-6789",
        "DNI 12345678Z y la tarjeta 4111 1111 1111 1111",
    ]
    everything = [sorted({r.entity for r in pii.pack.rules})] * len(texts)
    restricted = [pii.candidate_entities(t) for t in texts]
    for text, some, all_entities in zip(texts, restricted, everything, strict=True):
        assert some is not None and set(some) <= set(all_entities)
        got = pii._findings(pii._analyze(text, some))
        full = pii._findings(pii._analyze(text, None))
        assert [(f.start, f.end, f.type) for f in got] == [(f.start, f.end, f.type) for f in full]
        assert got, text


def test_windows_around_candidates_find_exactly_what_the_whole_text_finds(
    pii: PiiDetector,
) -> None:
    """Presidio on windows around candidates vs on the whole text: the same findings."""
    rng = random.Random(7)
    filler = [
        "The release train leaves on Thursday and the notes are in the wiki.",
        "Version 4.2 fixed 13 bugs; build 2026-11 passed 1,204 tests.",
        "회의록은 금요일까지 공유해 주세요.", "请在周五之前提交报告。",
        "Order 88231 ships from dock 7 at 14:05 with 3 pallets.",
    ]  # fmt: skip
    whole = PiiDetector(pii.analyzer, pii.pack)
    whole._windows = None
    assert pii._windows is not None
    windowed_runs = 0
    for _ in range(25):
        parts = [rng.choice(filler) for _ in range(rng.randint(80, 160))]
        for _ in range(rng.randint(1, 4)):
            parts.insert(rng.randrange(len(parts)), rng.choice(ID_SENTENCES)[1])
        parts.insert(rng.randrange(len(parts)), "mail minji.kang@example.co.kr today")
        text = " ".join(parts)
        windowed_runs += pii._windows.around(text) is not None
        windowed = sorted((f.start, f.end, f.type, f.score) for f in pii.detect(text))
        assert windowed == sorted((f.start, f.end, f.type, f.score) for f in whole.detect(text))
        assert windowed
    assert windowed_runs >= 10, "the texts should mostly be scanned in windows"


def test_digits_of_other_scripts_fold_to_ascii_only_where_there_are_some() -> None:
    from dlpproxy.detect.pii import _ascii_digits

    plain = "请在周五之前提交报告，第三版。"
    assert _ascii_digits(plain) is plain  # nothing to fold: the text is not walked
    assert _ascii_digits("رقم ١٢٣ و۴۵۶ و７８９ and 0") == "رقم 123 و456 و789 and 0"
