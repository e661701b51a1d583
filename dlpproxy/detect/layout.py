"""Layout features of a text window: what the classifier's labels are defined by, measured directly.

The labels say: program source (lines ending in `;`/`{`/`}`, keywords, operators, indentation),
documentation with a fenced code block of five or more lines tagged with a language (source code)
versus at most three lines (benign), meeting notes (attendees, agenda, action items, speaker
lines, timestamps, WebVTT cues, dated headings) and data exports (rows with a consistent number
of delimiters, lines that start with a timestamp, JSON records, SQL dumps). `features` turns a
window into a fixed vector of such measurements for the classifier's second stage; every value
is cheap (a few regular expressions over at most 2 KB) and independent of the natural language.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np


def _lines(pattern: str) -> re.Pattern[str]:
    """A pattern matched at most once per line, so that `findall` over a text counts lines."""
    if pattern.startswith("^"):
        return re.compile(pattern, re.M)
    return re.compile(rf"^[^\n]*?(?:{pattern})", re.M)


_FENCE = re.compile(r"^\s{0,8}(```+|~~~+)\s*([\w+#.-]*)")
_RST_BLOCK = re.compile(r"^\s*\.\. (code-block|code|sourcecode)::|::\s*$")
_CODE_ENDINGS = (";", "{", "}", "(", ")", "[", "]", "=", ",", "=>", " then", " do", " end")
_CODE_START = _lines(
    r"^[ \t]*(?:def|class|function|return|if|else|elif|for|foreach|while|import|from|#include|"
    r"#define|public|private|protected|static|const|let|var|fn|func|package|using|namespace|"
    r"struct|enum|impl|module|begin|local|val|case|switch|try|catch|throw|async|await|export|"
    r"interface|template|echo|printf|library|use|require|signal|entity|architecture|assign|"
    r"always|wire|reg|int|void|char|float|double|bool|string|auto|self|this)\b"
)
_OPERATOR = re.compile(r"==|!=|<=|>=|&&|\|\||->|=>|::|\+=|-=|:=|\+\+|<-|\w\(|\)\s*[{;]")
_COMMENT = _lines(r"^[ \t]*(?:#|//|/\*|\*|--|%|;)")
# Lower-case words counted with str.count (a long regex alternation is ten times slower).
MEETING_WORDS: tuple[str, ...] = (
    "attendee", "attendance", "participants", "present:", "agenda", "minutes", "meeting",
    "action item", "next steps", "decision", "note taker", "notes taker", "facilitator",
    "moderator", "chair:", "scribe", "recording", "standup", "stand-up", "sync", "retro",
    "discussion", "参会", "与会", "出席", "会议", "纪要", "议题", "议程", "待办", "决议", "结论",
    "主持", "记录人", "議事録", "参加者", "出席者", "議題", "決定事項", "会議", "打ち合わせ",
    "회의", "참석자", "안건", "결정", "회의록", "asistentes", "orden del día", "acta",
    "reunión", "acuerdos", "محضر", "الحضور", "جدول الأعمال", "اجتماع",
)  # fmt: skip
ACTION_MARKS: tuple[str, ...] = (
    "todo", "[ ]", "[x]", "ai:", "action:", "action item", "follow up", "follow-up", "owner:",
    "待办", "后续行动", "跟进", "負責", "担当", "담당", "할 일",
)  # fmt: skip
_SPEAKER = _lines(
    r"^[ \t]*(?:[-*][ \t]*)?(?:\*\*)?@?(?!\d)[^\s:：,.;()]{1,24}(?: [^\s:：,.;()]{1,24}){0,2}"
    r"(?:\*\*)?[ \t]*[:：][ \t]*\S"
)
_MENTION = _lines(r"@[\w\u0080-\uffff-]{2,}")
_CLOCK = _lines(r"\b\d{1,2}:\d{2}\b")
_CUE = _lines(r"-->")
_DATE = re.compile(r"\b\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}|\d{1,2}月\s*\d{1,2}日")
_BULLET = _lines(r"^[ \t]*(?:[-*+•]|\d+[.)、])[ \t]")
_HEADING = _lines(r"^ {0,3}#{1,6}[ \t]|^[ \t]*[=\-~^]{4,}[ \t]*$")
_STAMP_START = _lines(
    r"^[^\w\n]{0,3}(?:\d{2,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}:\d{2}:\d{2}|\d{10}|"
    r"[A-Z][a-z]{2} +\d{1,2},? +(?:\d{4} )?\d{2}:|\d{1,2}/[A-Z][a-z]{2}/\d{4})"
)
_JSON_LINE = _lines(r'^[ \t]*[\[{]?[ \t]*"[^"\n]{1,60}"[ \t]*:')
_SQL_DUMP = ("insert into ", "values (", "\ncopy ", "\n\\.\n")
_KEY_VALUE = re.compile(r"\b\w+=(\"[^\"]*\"|\S+)")
_URL = re.compile(r"https?://")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_DELIMITERS = (",", "\t", "|", ";")

NAMES: tuple[str, ...] = (
    "log_chars",
    "log_lines",
    "blank_share",
    "mean_line_len",
    "cjk_share",
    "letter_share",
    "digit_share",
    "punct_share",
    "space_share",
    "fence_longest",
    "fence_5plus",
    "fence_tagged_5plus",
    "fence_any",
    "fence_short_only",
    "rst_block_longest",
    "indented_longest",
    "code_end_share",
    "code_start_share",
    "operator_per_line",
    "bracket_share",
    "indent_share",
    "comment_share",
    "meeting_words",
    "meeting_words_head",
    "action_marks",
    "speaker_share",
    "mention_share",
    "clock_share",
    "cue_share",
    "date_count",
    "bullet_share",
    "heading_share",
    "stamp_start_share",
    "delimiter_consistency",
    "delimiter_columns",
    "json_line_share",
    "sql_dump",
    "key_value_per_line",
    "url_per_line",
    "line_len_cv",
    "digit_line_share",
)


def _fences(lines: list[str]) -> tuple[int, int, bool]:
    """(longest fenced block in lines, longest tagged one, any fence); an unclosed block runs to
    the end of the window and a window that starts inside a block counts up to its closing fence."""
    longest = tagged = 0
    marks = [(i, m.group(2)) for i, ln in enumerate(lines) if (m := _FENCE.match(ln))]
    if not marks:
        return 0, 0, False
    at = 0
    if len(marks) % 2 == 1 and not marks[0][1]:
        # the window opens inside a block: its first fence closes it
        longest = sum(1 for ln in lines[: marks[0][0]] if ln.strip())
        at = 1
    while at < len(marks):
        start, tag = marks[at]
        end = marks[at + 1][0] if at + 1 < len(marks) else len(lines)
        size = sum(1 for ln in lines[start + 1 : end] if ln.strip())
        longest = max(longest, size)
        if tag:
            tagged = max(tagged, size)
        at += 2
    return longest, tagged, True


def _indented_runs(lines: list[str]) -> tuple[int, int]:
    """(longest run of indented lines after an reST code directive, longest indented run)."""
    rst = run = longest = 0
    in_rst = False
    for ln in lines:
        if not ln.strip():
            continue
        if ln.startswith(("    ", "\t")):
            run += 1
            longest = max(longest, run)
            if in_rst:
                rst = max(rst, run)
        else:
            in_rst = bool(_RST_BLOCK.search(ln))
            run = 0
    return rst, longest


def _delimiters(lines: list[str]) -> tuple[float, float]:
    """Best share of lines having the modal (>= 1) count of one delimiter, and that count."""
    best, columns = 0.0, 0.0
    for d in _DELIMITERS:
        counts = Counter(ln.count(d) for ln in lines)
        mode, hits = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        if mode >= 1 and hits / len(lines) > best:
            best, columns = hits / len(lines), float(mode)
    return best, min(columns, 30.0) / 30.0


def _count(words: tuple[str, ...], text: str) -> int:
    return sum(text.count(w) for w in words)


def _share(pattern: re.Pattern[str], text: str, lines: int) -> float:
    """Share of the non-blank lines on which a `_lines` pattern matches."""
    return min(len(pattern.findall(text)) / lines, 1.0)


def features(text: str) -> np.ndarray:
    """The layout vector of one window (float32, in the order of `NAMES`)."""
    out = np.zeros(len(NAMES), dtype=np.float32)
    all_lines = text.split("\n")
    lines = [ln for ln in all_lines if ln.strip()]
    if not lines:
        return out
    n, chars = len(lines), max(len(text), 1)
    lower = text.lower()  # the word lists are lower case: faster than IGNORECASE
    letters = sum(map(str.isalpha, text))
    digits = sum(map(str.isdigit, text))
    spaces = sum(map(str.isspace, text))
    lengths = np.array([len(ln) for ln in lines], dtype=np.float64)
    fence, fence_tagged, fence_any = _fences(all_lines)
    rst, indented = _indented_runs(all_lines)
    consistency, columns = _delimiters(lines)
    out[:] = (
        np.log1p(chars) / 8.0,
        np.log1p(n) / 5.0,
        1.0 - n / len(all_lines),
        min(lengths.mean(), 300.0) / 100.0,
        len(_CJK.findall(text)) / chars,
        letters / chars,
        digits / chars,
        (chars - letters - digits - spaces) / chars,
        spaces / chars,
        min(fence, 40) / 40.0,
        float(fence >= 5),
        float(fence_tagged >= 5),
        float(fence_any),
        float(fence_any and fence <= 3),
        min(rst, 40) / 40.0,
        min(indented, 40) / 40.0,
        sum(1 for ln in lines if ln.rstrip().endswith(_CODE_ENDINGS)) / n,
        _share(_CODE_START, text, n),
        min(len(_OPERATOR.findall(text)) / n, 5.0) / 5.0,
        sum(text.count(c) for c in "{}[]()<>;=") / chars,
        sum(1 for ln in lines if ln[0] in " \t") / n,
        _share(_COMMENT, text, n),
        np.log1p(_count(MEETING_WORDS, lower)) / 3.0,
        float(_count(MEETING_WORDS, lower[:300]) > 0),
        np.log1p(_count(ACTION_MARKS, lower)) / 3.0,
        _share(_SPEAKER, text, n),
        _share(_MENTION, text, n),
        _share(_CLOCK, text, n),
        _share(_CUE, text, n),
        np.log1p(len(_DATE.findall(text))) / 3.0,
        _share(_BULLET, text, n),
        _share(_HEADING, text, n),
        _share(_STAMP_START, text, n),
        consistency if n >= 3 else 0.0,
        columns if n >= 3 else 0.0,
        _share(_JSON_LINE, text, n),
        float(any(w in lower for w in _SQL_DUMP)),
        min(len(_KEY_VALUE.findall(text)) / n, 5.0) / 5.0,
        min(len(_URL.findall(text)) / n, 2.0) / 2.0,
        min(lengths.std() / max(lengths.mean(), 1.0), 3.0) / 3.0,
        sum(1 for ln in lines if sum(map(str.isdigit, ln)) > 0.3 * len(ln)) / n,
    )
    return out
