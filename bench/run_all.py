"""Run every benchmark, print its tables, and write bench/results/<name>.json and .md.

    .venv/bin/python bench/run_all.py [--name NAME] [--only detection,speed] [options of each]

`make bench` runs this. A benchmark is a module in bench/ with `add_arguments(parser)` and
`run(args) -> report.Section`; later benchmarks are added to BENCHMARKS. The markdown file holds
tables ready for the README, headed by the date, the machine and the command that made them.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import Section, machine, machine_line

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# In the order they run: detection first (it runs peers in other processes), proxy (its
# processes use every core), then speed, which pins this process to one core, and the
# classifier (its CPU figures are one-thread figures anyway). The gateway goes before speed too: its
# client, gateway and model processes need every core.
BENCHMARKS = ("detection", "proxy", "gateway", "speed", "classifier", "tui", "fingerprint")


def _modules() -> dict[str, object]:
    return {name: importlib.import_module(f"bench.{name}") for name in BENCHMARKS}


def _python() -> str:
    """The interpreter as the reader would type it: `.venv/bin/python` inside the repository."""
    exe = Path(sys.executable)
    root = RESULTS_DIR.parent.parent
    return str(exe.relative_to(root)) if exe.is_relative_to(root) else str(exe)


def write_results(name: str, command: str, sections: Sequence[Section]) -> tuple[Path, Path]:
    info = machine()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS_DIR / f"{name}.json", RESULTS_DIR / f"{name}.md"
    payload = {"machine": info, "command": command, **{s.name: s.data for s in sections}}
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    head = f"# dlpproxy benchmarks\n\n{machine_line(info)}\n\nCommand: `{command}`\n"
    md_path.write_text("\n".join([head, *[s.markdown for s in sections]]), encoding="utf-8")
    return json_path, md_path


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    modules = _modules()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M")
    parser.add_argument("--name", default=f"bench-{stamp}", help="results file name (no suffix)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="which benchmarks to run")
    for module in modules.values():
        module.add_arguments(parser)  # type: ignore[attr-defined]
    args = parser.parse_args(args_in)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in modules]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    sections = []
    for name in chosen:
        began = time.perf_counter()
        print(f"== {name}", flush=True)
        sections.append(modules[name].run(args))  # type: ignore[attr-defined]
        print(f"== {name} took {time.perf_counter() - began:.0f} s", flush=True)
    command = shlex.join([_python(), "bench/run_all.py", *args_in])
    json_path, md_path = write_results(args.name, command, sections)
    for section in sections:
        print()
        print(section.markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
