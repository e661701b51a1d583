"""Data exports re-serialised into the other shapes a dump takes.

The same table reaches a chat prompt as CSV, tab-separated spreadsheet rows, JSON lines, a
pretty-printed JSON array or SQL `INSERT`/`COPY` statements. The corpus has each shape only from
some sources, so a model can tie a shape to one source's content; re-serialising every parsable
training export into another shape (a mechanical transformation, like the corpus's own CSV-to-TSV
step) teaches the shapes themselves.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Callable, Sequence

from dlpproxy.train.corpus import Record

Table = tuple[list[str], list[list[str]]]
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def parse_table(text: str) -> Table | None:
    """Header and rows of JSON lines or of delimited rows with a constant column count."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 3:
        return None
    if lines[0].lstrip().startswith("{"):
        try:
            objs = [json.loads(ln) for ln in lines]
        except ValueError:
            return None
        if not all(isinstance(o, dict) for o in objs):
            return None
        keys = list(objs[0])
        return keys, [[_cell(o.get(k, "")) for k in keys] for o in objs]
    delimiter = "\t" if "\t" in lines[0] else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    width = len(rows[0])
    if width < 2 or any(len(r) != width for r in rows):
        return None
    if any(_NUMBER.fullmatch(c.strip()) for c in rows[0]):
        return [f"col{i + 1}" for i in range(width)], rows
    return rows[0], rows[1:]


def _cell(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _typed(cell: str) -> object:
    return (
        float(cell)
        if _NUMBER.fullmatch(cell) and "." in cell
        else int(cell)
        if _NUMBER.fullmatch(cell)
        else cell
    )


def _sql_value(cell: str, rng: random.Random) -> str:
    if _NUMBER.fullmatch(cell):
        return cell
    if not cell:
        return "NULL"
    prefix = "N" if rng.random() < 0.2 else ""
    return prefix + "'" + cell.replace("'", "''") + "'"


def to_json_array(table: Table, rng: random.Random, name: str) -> str:
    header, rows = table
    objs = [{k: _typed(v) for k, v in zip(header, r, strict=True)} for r in rows]
    return json.dumps(objs, indent=rng.choice((2, 4)), ensure_ascii=False)


def to_json_lines(table: Table, rng: random.Random, name: str) -> str:
    header, rows = table
    return "\n".join(
        json.dumps({k: _typed(v) for k, v in zip(header, r, strict=True)}, ensure_ascii=False)
        for r in rows
    )


def to_sql_insert(table: Table, rng: random.Random, name: str) -> str:
    header, rows = table
    q = rng.choice(("`", '"', "[", ""))
    close = "]" if q == "[" else q
    cols = ", ".join(f"{q}{h}{close}" for h in header)
    indent = rng.choice(("", "  ", "    "))
    values = [indent + "(" + ", ".join(_sql_value(c, rng) for c in r) + ")" for r in rows]
    if rng.random() < 0.3:
        return "\n".join(
            f"INSERT INTO {q}{name}{close} ({cols}) VALUES {v.strip()};" for v in values
        )
    return f"INSERT INTO {q}{name}{close} ({cols}) VALUES\n" + ",\n".join(values) + ";"


def to_delimited(table: Table, rng: random.Random, name: str) -> str:
    header, rows = table
    out = io.StringIO()
    writer = csv.writer(out, delimiter=rng.choice((",", "\t", ";", "|")), lineterminator="\n")
    if rng.random() < 0.7:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().rstrip("\n")


def to_copy(table: Table, rng: random.Random, name: str) -> str:
    header, rows = table
    lines = [f"COPY public.{name} ({', '.join(header)}) FROM stdin;"]
    lines += ["\t".join(c if c else "\\N" for c in r) for r in rows]
    return "\n".join([*lines, "\\."])


SHAPES: tuple[Callable[[Table, random.Random, str], str], ...] = (
    to_json_array,
    to_json_lines,
    to_sql_insert,
    to_delimited,
    to_copy,
)


def reformat_exports(records: Sequence[Record], seed: int = 0, cap: int = 4000) -> list[Record]:
    """One re-serialised copy of each parsable data_export record, in a random other shape."""
    rng = random.Random(seed)
    out: list[Record] = []
    for r in records:
        if r.label != "data_export" or len(out) >= cap:
            continue
        table = parse_table(r.text)
        if table is None:
            continue
        name = (
            re.sub(r"\W+", "_", r.source.rsplit("/", 1)[-1].split(".")[0]).strip("_").lower()
            or "records"
        )
        text = rng.choice(SHAPES)(table, rng, name)[:4000]
        out.append(Record(text, "data_export", r.lang, f"derived:{r.source}"))
    return out
