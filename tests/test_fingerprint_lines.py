"""Windows of whole short lines: lists one word or one string per line, `__all__` tables and
class headers, whose lines are too short for a token k-gram to anchor each of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlpproxy.fingerprint.normalise import code_tokens, prose_tokens
from dlpproxy.fingerprint.store import FingerprintStore, FingerprintStoreError
from dlpproxy.fingerprint.winnow import CODE_LINES, PROSE_LINES, SKIPPED, line_kgrams
from tests.test_fingerprint_evidence import index_of
from tests.test_fingerprint_samples import distinct_note

WORDS = [
    "amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "heron", "indigo", "jasper",
    "kelp", "lichen", "marl", "nacre", "ochre", "pumice", "quartz", "rime", "sienna", "tundra",
]  # fmt: skip
STOP_WORDS = '"""\n' + "\n".join(WORDS) + '\n""".split()\n'
EXPORTS = "__all__ = [\n" + "".join(f'    "Ledger{w.title()}",\n' for w in WORDS) + "]\n"


def stop_words_module(words: list[str]) -> str:
    return f"STOP_WORDS = set(\n{STOP_WORDS.replace(chr(10).join(WORDS), chr(10).join(words))})"


def paste(text: str, first: int, count: int = 10) -> str:
    return "\n".join(text.splitlines()[first : first + count])


def test_a_paste_of_one_word_lines_is_found_by_windows_of_lines(tmp_path: Path):
    index = index_of(tmp_path, {"stop_words.py": stop_words_module(WORDS)})
    snippet = paste(stop_words_module(WORDS), 5)  # ten one-word lines: under one word k-gram
    assert len(prose_tokens(snippet)) == 10
    [match] = index.match(snippet)
    assert match.matched >= 3
    # the same words in another order are another list
    assert index.match("\n".join(WORDS[5:15][::-1])) == []


def test_a_list_that_many_company_files_hold_is_not_one_file_s_copy(tmp_path: Path):
    # eight modules hold the same list (each with prose of its own): each window is common
    files = {f"m{i}.py": f'"""{distinct_note(i, 3)}"""\n' + stop_words_module(WORDS)
             for i in range(8)}  # fmt: skip
    index = index_of(tmp_path, files)
    assert index.match(paste(stop_words_module(WORDS), 5)) == []
    index = index_of(tmp_path / "one", {"m.py": files["m0.py"]})
    assert index.match(paste(stop_words_module(WORDS), 5))


def test_an_exports_table_is_found_reformatted_but_not_with_other_names(tmp_path: Path):
    index = index_of(tmp_path, {"__init__.py": "from .ledger import *\n\n" + EXPORTS})
    snippet = paste(EXPORTS, 2, 7)  # 14 tokens: not one code k-gram
    assert index.match(snippet)
    assert index.match(snippet.replace("    ", "\t").replace('"', "'"))
    assert index.match(snippet.replace("Ledger", "Journal")) == []


def test_lines_without_a_name_or_literal_do_not_break_a_window():
    plain = code_tokens('a = "amber"\nb = "basalt"\nc = "cobalt"\nd = "dune"\n')
    spread = code_tokens('a = "amber"\n)\nb = "basalt"\n\nelse:\nc = "cobalt"\n]\nd = "dune"\n')
    keys, _, _ = line_kgrams(plain, CODE_LINES)
    assert len(keys) == 1 and keys[0] != SKIPPED
    assert np.array_equal(keys, line_kgrams(spread, CODE_LINES)[0])


def test_renamed_lines_share_keys_and_differ_in_tags():
    ours = code_tokens('gross = "gross"\nnet = -gross\nledger.net\ntax = "tax"\n')
    other = code_tokens('g = "gross"\nn = -g\nbook.net\nt = "tax"\n')
    keys, written, _ = line_kgrams(ours, CODE_LINES)
    keys2, written2, _ = line_kgrams(other, CODE_LINES)
    assert len(keys) == 1 and keys[0] != SKIPPED
    assert np.array_equal(keys, keys2)
    assert not np.array_equal(written, written2)


def test_only_runs_of_short_lines_make_windows():
    long_lines = "\n".join(
        f"value_{i} = compute(alpha_{i}, beta_{i}, gamma_{i}, delta_{i})" for i in range(6)
    )
    assert np.all(line_kgrams(code_tokens(long_lines), CODE_LINES)[0] == SKIPPED)
    sentences = distinct_note(3, 6)
    assert np.all(line_kgrams(prose_tokens(sentences), PROSE_LINES)[0] == SKIPPED)
    # four alike lines are a table, not content
    assert np.all(line_kgrams(prose_tokens("1\n2\n3\n4\n"), PROSE_LINES)[0] == SKIPPED)


def test_a_store_built_without_line_windows_must_be_rebuilt(tmp_path: Path):
    index_of(tmp_path, {"stop_words.py": stop_words_module(WORDS)})
    with FingerprintStore(tmp_path / "fp.db") as store:
        store.db.execute(
            "UPDATE meta SET value = 'code:k15w40d7g3r;prose:k8w18d4g2;norm14s3'"
            " WHERE key = 'params'"
        )
    with pytest.raises(FingerprintStoreError, match="another dlpproxy version"):
        FingerprintStore(tmp_path / "fp.db")


def test_five_one_word_lines_of_a_document_hold_two_windows_wherever_they_begin(tmp_path: Path):
    # prose keeps every window of 4 lines: any 5 lines of the list are two of them
    index = index_of(tmp_path, {"stop_words.py": stop_words_module(WORDS)})
    for first in (5, 6):
        snippet = paste(stop_words_module(WORDS), first, 5)
        assert len(prose_tokens(snippet)) == 5  # not one word k-gram
        assert index.match(snippet)
