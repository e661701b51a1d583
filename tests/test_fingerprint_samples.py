"""Small sources for the fingerprint tests (written for them): a company module, a memo, and
unrelated code and prose that must not match. Helpers to lay them out in a folder."""

from __future__ import annotations

from pathlib import Path

LEDGER = '''"""Ledger reconciliation for the Helios billing platform (internal)."""

from decimal import Decimal

TOLERANCE_CENTS = 3


class ReconciliationError(Exception):
    """A batch could not be matched against the bank statement."""


def reconcile_batch(invoices, statement_lines, tolerance=TOLERANCE_CENTS):
    # Walk both sides in date order; a payment may settle several invoices.
    pending = sorted(invoices, key=lambda inv: (inv.due_date, inv.number))
    settled = {}
    carry = Decimal("0")
    for line in sorted(statement_lines, key=lambda item: item.booked_on):
        amount = line.amount + carry
        while pending and pending[0].open_amount <= amount:
            invoice = pending.pop(0)
            amount -= invoice.open_amount
            settled[invoice.number] = line.reference
        if pending and abs(pending[0].open_amount - amount) * 100 <= tolerance:
            invoice = pending.pop(0)
            settled[invoice.number] = line.reference
            amount = Decimal("0")
        carry = amount
    if carry * 100 > tolerance:
        raise ReconciliationError(f"unmatched remainder {carry} after {len(settled)} invoices")
    return settled, pending


def dunning_level(days_overdue, previous_level, customer_tier):
    """Escalate reminders: gold customers get one more grace step."""
    grace = 2 if customer_tier == "gold" else 1
    if days_overdue <= 14 * grace:
        return previous_level
    level = min(4, previous_level + 1)
    if level == 4 and customer_tier != "gold":
        return 5
    return level


def export_journal(settled, writer):
    total = 0
    for number, reference in sorted(settled.items()):
        writer.writerow([number, reference, "SETTLED"])
        total += 1
    writer.writerow(["TOTAL", total, ""])
    return total
'''

GAME = """import random


class Dungeon:
    def __init__(self, width, height, seed=7):
        self.width = width
        self.height = height
        self.rng = random.Random(seed)
        self.rooms = []

    def carve(self, attempts=40):
        for _ in range(attempts):
            w, h = self.rng.randint(3, 8), self.rng.randint(3, 6)
            x, y = self.rng.randrange(self.width - w), self.rng.randrange(self.height - h)
            room = (x, y, x + w, y + h)
            if not any(overlaps(room, other) for other in self.rooms):
                self.rooms.append(room)
        return len(self.rooms)


def overlaps(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def render(dungeon):
    grid = [["#"] * dungeon.width for _ in range(dungeon.height)]
    for x0, y0, x1, y1 in dungeon.rooms:
        for yy in range(y0, y1):
            for xx in range(x0, x1):
                grid[yy][xx] = "."
    return "\\n".join("".join(row) for row in grid)
"""

MEMO = """Project Nightjar: pricing committee minutes, 14 March

Attendees agreed that the enterprise tier moves from a per-seat price to a metered price
based on processed documents, starting with the autumn renewal cycle. Finance will model
three scenarios before the next meeting: a flat platform fee with a low metered rate, a
tiered metered rate without platform fee, and the current seat price kept for customers
below two hundred seats. Sales asked that existing contracts keep their price until the
renewal date and that no customer sees an increase above eleven percent in the first year.
Legal will review whether the metered definition of a processed document survives the
audit clauses of the two largest public sector contracts. The committee meets again after
the scenario models are ready; until then the change is not to be discussed with customers.
"""

OTHER_PROSE = """The lighthouse keeper's logbook records the weather twice a day, with the wind
direction, the state of the sea and the visibility in nautical miles. In the winter months
the lamp was lit before four in the afternoon, and the keeper climbed the hundred and twelve
steps every three hours to trim the wick and polish the lens. Supply boats came on the first
Monday of each month when the sea allowed, bringing paraffin, flour, letters and newspapers
that were already a fortnight old by the time they were read beside the stove.
"""


def renamed_ledger() -> str:
    """LEDGER's reconcile_batch with every local name changed and the layout reformatted."""
    names = {
        "reconcile_batch": "match_payments",
        "invoices": "bills",
        "statement_lines": "rows",
        "tolerance": "slack",
        "pending": "todo",
        "settled": "done",
        "carry": "rest",
        "line": "entry",
        "amount": "money",
        "invoice": "bill",
        "inv": "b",
        "item": "r",
    }
    start = LEDGER.index("def reconcile_batch")
    end = LEDGER.index("def dunning_level")
    code = LEDGER[start:end]
    for old, new in names.items():
        code = _replace_word(code, old, new)
    return "\n".join("\t" * ((len(x) - len(x.lstrip())) // 4) + x.strip() for x in code.split("\n"))


def _replace_word(text: str, old: str, new: str) -> str:
    import re

    return re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, text)


def company_tree(root: Path) -> Path:
    """A small repository: code, a memo, vendored and generated files, a licence."""
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "ledger.py").write_text(LEDGER, encoding="utf-8")
    (root / "docs").mkdir()
    (root / "docs" / "minutes.md").write_text(MEMO, encoding="utf-8")
    (root / "node_modules" / "leftpad").mkdir(parents=True)
    (root / "node_modules" / "leftpad" / "game.py").write_text(GAME, encoding="utf-8")
    (root / "api_pb2.py").write_text(GAME, encoding="utf-8")
    (root / "LICENSE").write_text(OTHER_PROSE, encoding="utf-8")
    return root


_VOCABULARY_WORDS = """
    account audit balance batch budget cache channel client cluster column commit contract
    cursor customer deadline delta device digest entry export factor feature filter forecast
    gateway grant header index invoice journal kernel ledger limit margin matrix member metric
    module network offset option order packet payload period pipeline policy quota record
    region report request result revenue route sample schema segment sensor session shard
    signal source status stream supplier table tariff tenant ticket timer token trace vendor
    volume wafer window worker
"""
_VOCABULARY = tuple(_VOCABULARY_WORDS.split())


def distinct_module(seed: int, functions: int = 40) -> str:
    """Python code of its own: attribute names (kept as written) drawn at random, so no two
    seeds share more than a chance k-gram."""
    import random

    rng = random.Random(seed)
    words = lambda n: rng.sample(_VOCABULARY, n)  # noqa: E731
    out = []
    for i in range(functions):
        a, b, c, d = words(4)
        out.append(f"def step_{i}(x, y):\n    return x.{a}(y.{b}) + x.{c}.{d}(y)\n")
    return "\n".join(out)


def distinct_note(seed: int, sentences: int = 40) -> str:
    """Prose of its own: sentences of words drawn at random."""
    import random

    rng = random.Random(seed)
    return "\n".join(" ".join(rng.sample(_VOCABULARY, 12)) + "." for _ in range(sentences))
