"""Tables and the machine description the benchmarks print and write to bench/results/."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown pipe table, padded so that it also reads well in a terminal."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *[line(r) for r in cells[1:]]])


def ratio(hit: int, total: int) -> str:
    """`0.987 (296/300)`, or `-` when there is nothing to count."""
    return f"{hit / total:.3f} ({hit}/{total})" if total else "-"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def machine_line(info: dict[str, object]) -> str:
    return (
        f"{info['date']} - {info['cpu']}, {info['cores']} cores - Python {info['python']}"
        f" - {info['platform']}"
    )


@dataclass(frozen=True, slots=True)
class Section:
    """One benchmark's outcome: markdown ready for the README and the figures behind it."""

    name: str
    markdown: str
    data: dict[str, object]


def run_alone(
    doc: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], Section],
    argv: Sequence[str] | None,
) -> int:
    """Run one benchmark module as a script and print its tables (run_all.py runs them all)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    add_arguments(parser)
    section = run(parser.parse_args(argv))
    print()
    print(section.markdown)
    return 0
