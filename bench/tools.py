"""The tools a detection benchmark runs: ours through the CLI, peers through their runners,
presidio's default analyzer in this process. Each run yields findings per record id, or a reason
why the tool could not run ("n/a (...)") instead of an exception.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.datasets import REPO_ROOT, Record
from bench.scoring import Found

PEERS_DIR = REPO_ROOT / ".peers"
RUNNERS_DIR = Path(__file__).resolve().parent / "peers"
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
}


@dataclass(frozen=True, slots=True)
class ToolRun:
    """What one tool reported on one set, how long the whole run took, or why it did not run."""

    tool: str
    findings: dict[str, tuple[Found, ...]] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""
    record_errors: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer tool installed by bench/setup_peers.sh into .peers/<venv>."""

    name: str
    venv: str
    runner: str
    args: tuple[str, ...] = ()

    @property
    def python(self) -> Path:
        return PEERS_DIR / self.venv / "bin" / "python"


PEERS = {
    "detect-secrets": Peer("detect-secrets", "detect-secrets", "detect_secrets_runner.py"),
    "credsweeper": Peer("credsweeper", "credsweeper", "credsweeper_runner.py"),
    "llm-guard-secrets": Peer(
        "llm-guard Secrets", "llm-guard", "llm_guard_runner.py", ("secrets",)
    ),
    "llm-guard-anonymize": Peer(
        "llm-guard Anonymize", "llm-guard", "llm_guard_runner.py", ("anonymize",)
    ),
}


def _stdin_lines(records: Sequence[Record]) -> str:
    """Only id and text travel to a tool: the labels stay here."""
    return "".join(
        json.dumps({"id": r.id, "text": r.text}, ensure_ascii=False) + "\n" for r in records
    )


def _found(raw: dict[str, object]) -> Found:
    return Found(
        int(raw["start"]),  # type: ignore[call-overload]
        int(raw["end"]),  # type: ignore[call-overload]
        str(raw.get("type", "")),
        str(raw.get("category", "")),
    )


def parse_output(tool: str, stdout: str, ids: Sequence[str], seconds: float) -> ToolRun:
    """Read `{"id", "findings"}` / `{"id", "error"}` lines; other lines (stray logging) are skipped.

    A record that came back with an error or not at all counts in `record_errors`; when no record
    came back with findings the tool is n/a, with the first error (if any) as the reason.
    """
    findings: dict[str, tuple[Found, ...]] = {}
    errors: list[str] = []
    for line in stdout.splitlines():
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(raw, dict) or "id" not in raw:
            continue
        if "error" in raw:
            errors.append(str(raw["error"]))
            continue
        findings[str(raw["id"])] = tuple(_found(f) for f in raw.get("findings", []))
    failed = sum(1 for rid in ids if rid not in findings)
    if not findings:
        return ToolRun(
            tool, seconds=seconds, error=errors[0] if errors else "no output", record_errors=failed
        )
    return ToolRun(tool, findings, seconds, record_errors=failed)


def run_command(
    tool: str, command: Sequence[str], records: Sequence[Record], timeout: float
) -> ToolRun:
    """Run one process over all records (JSON lines in, JSON lines out), timing the whole run."""
    env = {**os.environ, **OFFLINE_ENV}
    began = time.perf_counter()
    try:
        done = subprocess.run(
            list(command),
            input=_stdin_lines(records),
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=env,
            cwd=REPO_ROOT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ToolRun(tool, error=f"timed out after {timeout:.0f} s")
    except OSError as exc:
        return ToolRun(tool, error=f"cannot start: {exc.strerror or exc}")
    seconds = time.perf_counter() - began
    result = parse_output(tool, done.stdout, [r.id for r in records], seconds)
    if result.error == "no output":
        tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return ToolRun(tool, seconds=seconds, error=tail[:200], record_errors=result.record_errors)
    return result


def run_ours(detectors: Sequence[str], records: Sequence[Record], timeout: float) -> ToolRun:
    """`dlpproxy scan --jsonl - --detectors ...`, the bulk interface we ship."""
    label = "dlpproxy " + (",".join(detectors) if detectors else "(default set)")
    cli = REPO_ROOT / ".venv" / "bin" / "dlpproxy"
    if not (REPO_ROOT / "dlpproxy" / "cli" / "scan.py").is_file() or not cli.exists():
        return ToolRun(label, error="`dlpproxy scan` is not available in this checkout")
    command = [str(cli), "scan", "--jsonl", "-"]
    if detectors:
        command += ["--detectors", ",".join(detectors)]
    return run_command(label, command, records, timeout)


def run_peer(key: str, records: Sequence[Record], timeout: float) -> ToolRun:
    """A peer in its own venv through its runner; not installed or failed install is n/a."""
    peer = PEERS[key]
    failed = PEERS_DIR / peer.venv / ".failed"
    if failed.is_file():
        return ToolRun(peer.name, error=failed.read_text(encoding="utf-8").strip())
    if not peer.python.exists():
        return ToolRun(peer.name, error="not installed; run bench/setup_peers.sh")
    command = [str(peer.python), str(RUNNERS_DIR / peer.runner), *peer.args]
    return run_command(peer.name, command, records, timeout)


def run_presidio(records: Sequence[Record]) -> ToolRun:
    """presidio's default AnalyzerEngine in this process (language "en", every recogniser)."""
    from bench.presidio_default import build_analyzer

    tool = "presidio default"
    began = time.perf_counter()
    try:
        analyzer = build_analyzer()
    except Exception as exc:  # a missing model is a row that says why
        return ToolRun(tool, error=f"{type(exc).__name__}: {exc}"[:200])
    findings = {
        r.id: tuple(
            Found(x.start, x.end, x.entity_type) for x in analyzer.analyze(r.text, language="en")
        )
        for r in records
    }
    return ToolRun(tool, findings, time.perf_counter() - began)
