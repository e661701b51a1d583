"""How much shared evidence makes a match: channels adding up, import blocks, fingerprints that
many company files share, and what stays below the bar."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlpproxy.fingerprint.indexer import index_paths
from dlpproxy.fingerprint.matcher import MemoryIndex
from dlpproxy.fingerprint.store import COMMON_MIN_FILES, FingerprintStore, common_limit
from tests.test_fingerprint_samples import GAME, LEDGER, MEMO, distinct_note

MB = 1024 * 1024

RATES = '''"""Settlement dates for the Helios billing platform (internal)."""


def settlement_day(region, calendar, ledger):
    """Settlement waits until the clearing house of the region has closed its books."""
    day = calendar.next_business_day(region.clearing_close, offset=2)
    return ledger.book(day, region.currency)
'''

IMPORTS = """from helios.billing.ledger import reconcile_batch, dunning_level, export_journal
from helios.billing.rates import settlement_day, clearing_calendar
from helios.payments.gateway import PaymentGateway, GatewayTimeout
from helios.payments.refunds import RefundPolicy, refund_window
from helios.reporting.journal import JournalWriter
"""

SERVICE = (
    IMPORTS
    + """

def close_day(batch, statement, writer):
    settled, pending = reconcile_batch(batch.invoices, statement.lines)
    return export_journal(settled, JournalWriter(writer)), pending
"""
)


def index_of(tmp_path: Path, files: dict[str, str]) -> MemoryIndex:
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "repo"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    with FingerprintStore(tmp_path / "fp.db", create=True) as store:
        index_paths(store, [root], "helios", MB)
        index, _ = store.load()
    return index


@pytest.fixture
def index(tmp_path) -> MemoryIndex:
    return index_of(tmp_path, {"rates.py": RATES, "ledger.py": LEDGER, "service.py": SERVICE})


def test_a_line_of_code_and_its_docstring_add_up_to_a_match(index):
    docstring = RATES.index('    """Settlement waits')
    body = RATES.index("    day =")
    assert index.match(RATES[docstring:])  # one code and one prose fingerprint together
    assert index.match(RATES[body:]) == []  # the code line alone is too little
    assert index.match(RATES[docstring:body]) == []  # so is the docstring alone


def test_an_import_block_of_company_modules_is_recognised(index):
    [match] = index.match("Why does this fail to import?\n\n" + IMPORTS)
    assert match.matched >= 2


def test_imports_of_other_modules_do_not_match(index):
    other = IMPORTS.replace("helios", "orion").replace("billing", "accounts")
    assert index.match(other) == []
    assert index.match(GAME) == []


def test_renamed_imported_names_are_not_the_same_import(index):
    renamed = IMPORTS.replace("reconcile_batch", "match_batch").replace("RefundPolicy", "Rules")
    renamed = renamed.replace("settlement_day", "value_day").replace("JournalWriter", "Writer")
    assert index.match(renamed) == []


def test_the_common_limit_grows_with_the_index():
    assert common_limit(10) == COMMON_MIN_FILES
    assert common_limit(1000) == 100  # a tenth of the files


def test_code_that_many_company_files_share_still_counts_below_a_tenth_of_them(tmp_path):
    # a generated-client style block in 34 files out of 350: more than COMMON_MIN_FILES, but
    # less than a tenth of the index, so it is still the company's code
    shared = LEDGER[LEDGER.index("def reconcile_batch") : LEDGER.index("def dunning_level")]
    files = {f"client/c{i}.py": f"CLIENT_ID = {i}\n\n" + shared for i in range(34)}
    files |= {f"other/m{i}.py": GAME.replace("Dungeon", f"Dungeon{i}") for i in range(316)}
    index = index_of(tmp_path, files)
    assert common_limit(350) >= 34 > COMMON_MIN_FILES
    assert index.match(shared)


SETTLE = """def settle(invoice, payment):
    return invoice.book(invoice.open_amount - payment.amount * payment.rate, payment.currency)
"""


def test_the_exact_copy_is_found_among_many_renamed_ones(tmp_path):
    # ten renamed copies (indexed first) each share its two fingerprints renamed, not enough
    # for a match; the exact copy (two exact ones) must still be among the files looked at
    copies = tmp_path / "copies"
    copies.mkdir()
    for i in range(10):
        renamed = SETTLE.replace("invoice", f"bill{i}").replace("payment", f"pay{i}")
        (copies / f"c{i}.py").write_text(renamed, encoding="utf-8")
    exact = tmp_path / "exact"
    exact.mkdir()
    (exact / "settle.py").write_text(SETTLE, encoding="utf-8")
    with FingerprintStore(tmp_path / "fp.db", create=True) as store:
        index_paths(store, [copies], "copies", MB)
        index_paths(store, [exact], "billing", MB)
        index, files = store.load()
    [match] = index.match(SETTLE)
    assert files[match.file_id][1].endswith("settle.py")


POLICY = """Travel above the agreed rate needs the written consent of a regional director.
Receipts for hotel nights must be uploaded within ten days of the return flight.
Meals with clients count against the department budget, never the project budget.
Train tickets in first class are allowed for journeys longer than four hours.
Mileage is refunded at the rate the works council agreed for the current year.
"""


def test_lines_of_a_document_in_another_order_still_count_for_something(tmp_path):
    index = index_of(tmp_path, {"travel-policy.md": POLICY})
    lines = POLICY.splitlines()
    # each line is one fingerprint of this document alone; out of order they are no chain,
    # but three of them together are still enough, two are not
    assert index.match("\n".join([lines[3], lines[1], lines[0]]))
    assert index.match("\n".join([lines[3], lines[1]])) == []
    assert index.match("\n".join(lines[0:2]))  # two in order are a chain


def test_near_copies_of_a_document_count_once_when_weighing_a_quote(tmp_path):
    quote = "\n".join(MEMO.splitlines()[2:4])
    edited = MEMO.replace("eleven percent", "nine percent")  # a later version of the memo
    near = index_of(tmp_path / "near", {"minutes-v1.md": MEMO, "minutes-v2.md": edited})
    assert near.match(quote)
    # three different documents that quote the same lines make them common: less weight
    files = {f"note{i}.md": distinct_note(i) + "\n\n" + quote + "\n" for i in range(3)}
    shared = index_of(tmp_path / "shared", files | {"minutes.md": MEMO})
    assert shared.match(quote) == []


def _options(i: int) -> str:
    """A function whose typed parameter list has the same shape in every module, names apart."""
    kinds = ["Optional[float] = None", "list[str] = []", "dict[str, int] | None = None",
             "tuple[int, ...] = ()", "bool = False", "Callable[[str], None] | None = None",
             "Sequence[bytes] = ()", "Mapping[str, float] = {}"]  # fmt: skip
    params = "".join(f"    param{n}_{i}: {kind},\n" for n, kind in enumerate(kinds))
    # a body of its own (attribute names stay as written), so the modules are not near-copies
    body = "".join(f"    store.put_{i}_{j}(registry.entry_{i}_{j}, {j})\n" for j in range(12))
    return f"def make_{i}(\n{params}) -> None:\n{body}"


def test_a_renamed_shape_that_many_company_files_take_is_not_a_copy(tmp_path):
    # eleven modules share the parameter list's shape once renamed: a renamed paste shares
    # nothing rarer, while an exact paste still matches its own module
    index = index_of(tmp_path / "many", {f"m{i}.py": _options(i) for i in range(11)})
    head = _options(99).split("    store.")[0]
    assert index.match(head) == []
    assert index.match(_options(3).split("    store.")[0])


def test_a_renamed_shape_of_few_company_files_is_still_a_renamed_copy(tmp_path):
    index = index_of(tmp_path / "few", {f"m{i}.py": _options(i) for i in range(2)})
    assert index.match(_options(99).split("    store.")[0])


def test_a_run_of_lines_that_many_documents_share_is_a_copy_where_its_lines_are_not(tmp_path):
    # six documents quote the travel policy: each of its lines alone weighs a sixth, but five
    # of them next to each other, in the documents' order, are a copied stretch
    files = {f"note{i}.md": distinct_note(i) + "\n\n" + POLICY for i in range(6)}
    index = index_of(tmp_path, files)
    lines = POLICY.splitlines()
    assert index.match(POLICY)
    assert index.match("\n".join(lines[:4])) == []  # four are not a run
    assert index.match("\n".join([lines[i] for i in (4, 2, 0, 3, 1)])) == []  # nor out of order


def test_a_run_needs_the_lines_next_to_each_other_in_the_document(tmp_path):
    # six documents hold the policy's lines in the same order, but each line among sentences
    # of its own: in order, yet not next to each other, so each still weighs a sixth
    def spread_out(i: int) -> str:
        own = distinct_note(i, sentences=12).splitlines()
        return "\n".join(f"{own[2 * n]}\n{line}\n{own[2 * n + 1]}"
                         for n, line in enumerate(POLICY.splitlines()))  # fmt: skip

    index = index_of(tmp_path, {f"note{i}.md": spread_out(i) for i in range(6)})
    assert index.match(POLICY) == []
