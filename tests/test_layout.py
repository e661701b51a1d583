"""Layout features of the classifier's second stage, on small real-looking texts."""

from __future__ import annotations

import pytest

from dlpproxy.detect.layout import NAMES, features


def feature(text: str, name: str) -> float:
    return float(features(text)[NAMES.index(name)])


DOC_WITH_LONG_BLOCK = """Install it, then read a file like this:

```python
import json

def load(path):
    with open(path) as fh:
        data = json.load(fh)
    return data
```

That is all you need."""

DOC_WITH_SHORT_BLOCK = """Install the package with pip:

```sh
pip install requests
```

Then import it in your program."""

RST_PAGE = """Set to ``false`` to disable redirects.

.. code-block:: php

    $res = $client->request('GET', '/redirect/3', ['allow_redirects' => false]);
    echo $res->getStatusCode();

Set to ``true`` to enable normal redirects."""

CSV_ROWS = """id,name,city,amount,currency
1,Hanna Berg,Malmo,149.90,EUR
2,Luis Ortega,Puebla,89.00,USD
3,Aiko Sato,Osaka,12000,JPY
4,Omar Haddad,Dubai,310.50,USD"""

SERVER_LOG = """2024-03-02 10:14:07 INFO  api  GET /orders 200 12ms
2024-03-02 10:14:09 WARN  api  GET /orders/17 404 3ms
2024-03-02 10:15:44 INFO  api  POST /orders 201 41ms
2024-03-02 10:17:02 ERROR db   timeout after 5000ms"""

TRANSCRIPT = """WEBVTT

00:00:01.000 --> 00:00:04.000
Mina: Let's start with the release status.

00:00:04.500 --> 00:00:09.000
Carlos: The installer fix landed on Tuesday."""

CHINESE_MINUTES = """会议纪要（3月14日）
参会人：王强、李娜、张伟
议题一：版本发布进度
待办事项：王强周三前完成发布说明初稿。"""

JAPANESE_MINUTES = """議事録 2024年3月14日
参加者：佐藤、田中
決定事項：金曜日にリリースする。"""

PROSE = (
    "The river rises in the northern hills and flows south through farmland before reaching "
    "the sea near the old harbour town."
)


def test_vector_has_one_value_per_name_and_is_zero_for_empty_text() -> None:
    assert features("").shape == (len(NAMES),)
    assert not features("").any()
    assert not features("\n\n  \n").any()


def test_tagged_fenced_block_of_five_lines_is_measured() -> None:
    assert feature(DOC_WITH_LONG_BLOCK, "fence_longest") == pytest.approx(5 / 40)
    assert feature(DOC_WITH_LONG_BLOCK, "fence_tagged_5plus") == 1.0
    assert feature(DOC_WITH_LONG_BLOCK, "fence_short_only") == 0.0


def test_one_line_fenced_block_counts_as_short() -> None:
    assert feature(DOC_WITH_SHORT_BLOCK, "fence_5plus") == 0.0
    assert feature(DOC_WITH_SHORT_BLOCK, "fence_short_only") == 1.0


def test_window_that_opens_inside_a_block_counts_the_lines_before_its_closing_fence() -> None:
    text = "    return merged\n\nprint(merge(pairs))\n```\n\nThe function above merges pairs."
    assert feature(text, "fence_longest") == pytest.approx(2 / 40)
    assert feature(text, "fence_tagged_5plus") == 0.0


def test_unclosed_block_runs_to_the_end_of_the_window() -> None:
    cut = DOC_WITH_LONG_BLOCK.split("```\n\nThat")[0]
    assert feature(cut, "fence_tagged_5plus") == 1.0


def test_rst_code_directive_block_is_measured() -> None:
    assert feature(RST_PAGE, "rst_block_longest") == pytest.approx(2 / 40)
    assert feature(PROSE, "rst_block_longest") == 0.0


def test_csv_rows_have_consistent_delimiters() -> None:
    assert feature(CSV_ROWS, "delimiter_consistency") == 1.0
    assert feature(CSV_ROWS, "delimiter_columns") == pytest.approx(4 / 30)
    assert feature(PROSE, "delimiter_consistency") == 0.0


def test_log_lines_start_with_timestamps() -> None:
    assert feature(SERVER_LOG, "stamp_start_share") == 1.0
    assert feature(CSV_ROWS, "stamp_start_share") == 0.0


def test_transcript_cues_speakers_and_clock_times() -> None:
    assert feature(TRANSCRIPT, "cue_share") == pytest.approx(2 / 5)
    assert feature(TRANSCRIPT, "speaker_share") == pytest.approx(2 / 5)
    assert feature(TRANSCRIPT, "clock_share") == pytest.approx(2 / 5)


@pytest.mark.parametrize("minutes", [CHINESE_MINUTES, JAPANESE_MINUTES])
def test_meeting_words_are_found_in_chinese_and_japanese(minutes: str) -> None:
    assert feature(minutes, "meeting_words") > 0.3
    assert feature(minutes, "meeting_words_head") == 1.0
    assert feature(minutes, "date_count") > 0.0


def test_plain_prose_has_no_meeting_code_or_data_signals() -> None:
    for name in ("meeting_words", "code_start_share", "code_end_share", "stamp_start_share"):
        assert feature(PROSE, name) == 0.0


def test_code_lines_are_recognised_by_keywords_and_endings() -> None:
    code = "int main(void) {\n    int x = 1;\n    return x;\n}"
    assert feature(code, "code_start_share") == pytest.approx(3 / 4)
    assert feature(code, "code_end_share") == 1.0
