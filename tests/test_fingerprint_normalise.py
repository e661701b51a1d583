"""Normalisation and winnowing: what survives reformatting and renaming, and the guarantee."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dlpproxy.fingerprint.normalise import (
    Tokens,
    code_tokens,
    notes_text,
    prose_tokens,
    without_licences,
)
from dlpproxy.fingerprint.winnow import (
    CODE,
    PROSE,
    SKIPPED,
    Channel,
    fingerprints,
    kgram_hashes,
    line_anchors,
    selected,
    stored,
    winnow,
)


def same_stream(a: Tokens, b: Tokens) -> bool:
    return np.array_equal(a.values, b.values) and np.array_equal(a.dists, b.dists)


def test_comments_are_dropped_in_every_common_syntax():
    plain = code_tokens("x = 1\ny = 2\n")
    commented = code_tokens("x = 1  # note\n/* block\ncomment */ y = 2 // trailing\n")
    assert same_stream(plain, commented)


def test_comments_and_docstrings_become_notes_without_licence_headers():
    notes: list[str] = []
    code_tokens(
        "# Copyright 2024 Example Corp. Licensed under the Apache License.\n"
        'def f():\n    """Reconcile the ledger against the statement, line by line."""\n'
        "    return 1  # the remainder is carried\n",
        notes,
    )
    text = notes_text(notes)
    assert "Reconcile the ledger" in text
    assert "remainder is carried" in text
    assert "Copyright" not in text


def test_identifiers_are_classes_but_their_repetitions_are_kept():
    a = code_tokens("total = price * qty + price")
    b = code_tokens("s = p * q + p")
    c = code_tokens("s = p * q + q")
    assert same_stream(a, b)
    assert not same_stream(a, c)  # which name repeats is structure, not a name
    assert not np.array_equal(a.lexical, b.lexical)  # as written they differ


def test_literals_are_classes_and_quote_style_is_formatting():
    a = code_tokens("x = 'abc' + 42")
    b = code_tokens('x = "zz" + 7')
    assert same_stream(a, b)
    assert np.array_equal(code_tokens("x = 'abc'").lexical, code_tokens('x = "abc"').lexical)


def test_whitespace_and_line_breaks_do_not_matter():
    assert same_stream(code_tokens("f(a,b)[0]"), code_tokens("f (\n    a ,\n\tb\n) [ 0 ]"))


def test_keywords_and_operators_stay_themselves():
    assert not same_stream(code_tokens("if x: return y"), code_tokens("while x: return y"))
    assert not same_stream(code_tokens("a = b + c"), code_tokens("a = b - c"))


def test_import_lines_are_tokens_as_written_whatever_their_layout():
    one_line = code_tokens("from .ledger import post_entry, Ledger\n")
    wrapped = code_tokens("from .ledger import (\n    post_entry,\n    Ledger,\n)\n")
    other_module = code_tokens("from .payroll import post_entry, Ledger\n")
    assert len(one_line) == 7  # from . ledger import post_entry , Ledger
    assert np.all(one_line.dists == -1)  # module and imported names are not renamed
    assert np.array_equal(one_line.values, wrapped.values[[0, 1, 2, 3, 5, 6, 7]])
    assert not np.array_equal(one_line.values, other_module.values)


def test_words_that_are_names_in_python_are_renameable():
    # `type`, `count`, `values`, `func` are keywords somewhere (SQL, Go) but ordinary names
    # in most code: renaming them must give the same stream
    a = code_tokens("count = len(values)\ntype = func(count)")
    b = code_tokens("n = len(vs)\nkind = fn2(n)")
    assert same_stream(a, b)
    assert not same_stream(code_tokens("if x: y"), code_tokens("z x: y"))


def test_token_spans_point_into_the_text():
    text = "total = price"
    tokens = code_tokens(text)
    assert [text[s:e] for s, e in zip(tokens.starts, tokens.ends, strict=True)] == [
        "total",
        "=",
        "price",
    ]


def test_prose_ignores_case_punctuation_and_numbers():
    a = prose_tokens("The budget for 2024 is final.")
    b = prose_tokens("the  BUDGET, for 2025 -- is final")
    assert np.array_equal(a.values, b.values)
    assert not np.array_equal(a.values, prose_tokens("the budget for 2024 was final").values)


def test_hashes_and_versions_with_letters_are_words_not_numbers():
    a = prose_tokens("commit 52435f302f4724157ec5 fixes 1.4.2")
    b = prose_tokens("commit 06ae5ed5971fe616b96b fixes 1.4.3")
    assert not np.array_equal(a.values, b.values)
    assert np.array_equal(a.values[2:], b.values[2:])


def test_renamed_code_gets_the_same_keys_and_other_tags():
    a = code_tokens("def area(w, h):\n    r = w * h\n    if r > 10:\n        return r - w\n")
    b = code_tokens("def size(x, y):\n    z = x * y\n    if z > 10:\n        return z - x\n")
    keys_a, written_a = kgram_hashes(a, CODE)
    keys_b, written_b = kgram_hashes(b, CODE)
    assert np.array_equal(keys_a, keys_b)
    assert not np.array_equal(written_a, written_b)


def test_repetitive_kgrams_are_skipped():
    table = code_tokens("x = [" + ", ".join(["1"] * 40) + "]")
    keys, _ = kgram_hashes(table, CODE)
    assert np.all(keys[5:-5] == SKIPPED)
    assert len(fingerprints(table, CODE)[0]) <= 2


def test_numbered_constants_match_only_with_their_names():
    names = [f"FLAG_{i}" for i in range(12)]
    a = code_tokens("\n".join(f"{n} = {i}" for i, n in enumerate(names)))
    b = code_tokens("\n".join(f"OTHER_{i} = {i}" for i in range(12)))
    c = code_tokens("\n".join(f"{n} = {i}" for i, n in enumerate(names)) + "\n")
    keys_a, _ = kgram_hashes(a, CODE)
    keys_b, _ = kgram_hashes(b, CODE)
    assert not set(keys_a.tolist()) & set(keys_b.tolist())
    assert np.array_equal(keys_a, kgram_hashes(c, CODE)[0])


def test_string_tables_still_match_after_renaming():
    rows = [("alpha", "one"), ("beta", "two"), ("gamma", "three"), ("delta", "four")]
    a = code_tokens("\n".join(f"t[{x!r}] = {y!r}" for x, y in rows))
    b = code_tokens("\n".join(f"table[{x!r}] = {y!r}" for x, y in rows))
    keys_a, written_a = kgram_hashes(a, CODE)
    keys_b, written_b = kgram_hashes(b, CODE)
    assert np.array_equal(keys_a, keys_b)
    assert not np.array_equal(written_a, written_b)


def test_prose_kgrams_of_numbers_alone_are_skipped():
    listing = prose_tokens("x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]")
    keys, _ = kgram_hashes(listing, PROSE)
    assert np.all(keys == SKIPPED)  # "x" and seven numbers are two distinct words
    sentence = prose_tokens("the ledger is closed on the 3rd working day of each month")
    assert not np.any(kgram_hashes(sentence, PROSE)[0] == SKIPPED)


def _words(rng: random.Random, n: int) -> list[str]:
    return [f"w{rng.randrange(5000)}" for _ in range(n)]


@pytest.mark.parametrize("channel", [PROSE, Channel("small", k=3, w=4, min_matches=2, min_exact=2)])
def test_winnowing_guarantee_shared_runs_on_one_line_share_a_fingerprint(channel):
    rng = random.Random(11)
    run = channel.w + channel.k - 1
    for _ in range(200):
        shared = _words(rng, run)
        a = _words(rng, rng.randrange(0, 60)) + shared + _words(rng, rng.randrange(0, 60))
        b = _words(rng, rng.randrange(0, 60)) + shared + _words(rng, rng.randrange(0, 60))
        fa = set(fingerprints(prose_tokens(" ".join(a)), channel)[0].tolist())
        fb = set(fingerprints(prose_tokens(" ".join(b)), channel)[0].tolist())
        assert fa & fb


def test_winnowing_keeps_about_two_in_w_plus_one():
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 2**63, size=100_000, dtype=np.uint64)
    picked = winnow(hashes, 16)
    assert 2 / 17 * 0.9 < len(picked) / len(hashes) < 2 / 17 * 1.1
    # every window of w hashes holds a picked position
    assert np.max(np.diff(picked)) <= 16


def test_a_text_shorter_than_a_window_still_gets_one_fingerprint():
    assert len(winnow(np.array([5, 3, 9], dtype=np.uint64), 16)) == 1
    assert len(winnow(np.zeros(0, dtype=np.uint64), 16)) == 0


def test_a_licence_header_of_many_comment_lines_is_left_out_whole():
    notes: list[str] = []
    code_tokens(
        "# Permission to use, copy and modify this software is granted, provided\n"
        "# that the above notice appears in all copies. THE SOFTWARE IS PROVIDED\n"
        "# AS IS, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.\n"
        "x = 1\n# Retry the upload twice before giving up on the batch.\n",
        notes,
    )
    text = notes_text(notes)
    assert "Permission to use" not in text and "that the above notice" not in text
    assert "Retry the upload twice" in text


def test_attributes_and_dunders_are_kept_as_written():
    # a renamed local keeps the stream; another attribute or dunder is another stream
    assert same_stream(code_tokens("total.amount = x"), code_tokens("t.amount = y"))
    assert not same_stream(code_tokens("total.amount = x"), code_tokens("total.count = x"))
    assert not same_stream(
        code_tokens("def __eq__(self): pass"), code_tokens("def __lt__(self): pass")
    )


def test_a_table_of_strings_keeps_its_keys_when_renamed():
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    rows = "".join(f'    "{w}",\n' for w in words)
    keys, _ = kgram_hashes(code_tokens(f"names = [\n{rows}]\n"), CODE)
    renamed, _ = kgram_hashes(code_tokens(f"labels = [\n{rows}]\n"), CODE)
    other, _ = kgram_hashes(code_tokens(f"labels = [\n{rows.replace('beta', 'bravo')}]\n"), CODE)
    assert np.array_equal(keys, renamed)
    assert not np.array_equal(keys, other)
    assert not np.any(keys == SKIPPED)


LINES = (
    "def settle(batch, ledger):\n"
    "    total = sum(item.amount for item in batch if item.open)\n"
    "    if total > ledger.limit:\n"
    "        raise LedgerError(f'over the limit by {total - ledger.limit}')\n"
    ")\n"
    "]\n"
    "    ledger.book(total, reference=batch.reference, when=batch.booked_on)\n"
    "    return ledger.balance() - total * ledger.rate + len(batch)\n"
)


def test_every_full_line_begins_a_fingerprint_and_short_lines_lean_on_a_neighbour():
    tokens = code_tokens(LINES)
    starts = [int(np.flatnonzero(tokens.lines == line)[0]) for line in range(8)]
    anchors = line_anchors(tokens, CODE).tolist()
    # lines 4 and 5 (a closing bracket each) are a run of short lines: the first has one
    assert [starts[i] for i in (0, 1, 2, 3, 4, 6)] == [a for a in anchors if a <= starts[6]]
    # a short line just before a full one has none: the full line's k-gram covers it
    short = code_tokens("x = compute(alpha, beta, gamma, delta)\n)\n" + LINES)
    assert int(np.flatnonzero(short.lines == 1)[0]) not in line_anchors(short, CODE).tolist()


def test_a_paste_of_whole_lines_holds_the_fingerprints_of_its_lines_whatever_its_layout():
    tokens = code_tokens(LINES)
    hashes, _ = kgram_hashes(tokens, CODE)
    kept = selected(tokens, hashes, CODE)
    paste = " ".join(x.strip() for x in LINES.splitlines()[1:])  # one line, other spacing
    looked_up = set(stored(kgram_hashes(code_tokens(paste), CODE)[0]).tolist())
    first = int(np.flatnonzero(tokens.lines == 1)[0])
    inside = [p for p in kept.tolist() if p >= first]
    assert len(inside) >= 3
    assert set(stored(hashes[inside]).tolist()) <= looked_up


def test_the_zlib_licence_paragraphs_of_a_document_are_boilerplate():
    text = (
        "Build notes for the Helios codec.\n\n"
        "This software is provided 'as-is', without any express or implied warranty.\n\n"
        "2. Altered source versions must be plainly marked as such, and must not be\n"
        "misrepresented as being the original software.\n\n"
        "Run make twice after changing the tables."
    )
    kept = without_licences(text)
    assert "Build notes" in kept and "make twice" in kept
    assert "warranty" not in kept and "Altered" not in kept


def test_kgrams_made_mostly_of_strings_are_keyed_by_their_wording():
    def options(var: str, flags: tuple[str, str, str]) -> str:
        return "\n".join(
            f'{var}.add_argument("{f}", action="store_true", help="{f[2:]} the table")'
            for f in flags
        )

    ours = code_tokens(options("parser", ("--merge", "--split", "--audit")))
    renamed = code_tokens(options("p", ("--merge", "--split", "--audit")))
    other = code_tokens(options("parser", ("--fast", "--best", "--quiet")))
    keys, _ = kgram_hashes(ours, CODE)
    assert np.array_equal(keys, kgram_hashes(renamed, CODE)[0])  # renaming keeps strings
    assert not set(keys.tolist()) & set(kgram_hashes(other, CODE)[0].tolist())
