"""`dlpproxy scan` as a user runs it: a real process, real files, exit statuses 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def scan(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "dlpproxy", "scan", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )


def test_marking_on_stdin_is_reported_with_line_and_column_and_exit_1() -> None:
    done = scan("-", "--detectors", "keywords", stdin="hello\n본 문서는 대외비\n".encode())
    assert done.returncode == 1
    assert done.stdout.decode().startswith(
        "<stdin>:2:7: confidential_marking/classification_mark [keywords, high, 0.95] 대외비"
    )


def test_clean_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "clean.txt"
    path.write_text("What is the capital of France?", encoding="utf-8")
    done = scan(str(path), "--detectors", "keywords")
    assert (done.returncode, done.stdout) == (0, b"")


def test_json_output_is_one_object_with_findings() -> None:
    done = scan("-", "--json", "--detectors", "keywords", stdin=b"CONFIDENTIAL plan")
    out = json.loads(done.stdout)
    assert out["detectors"] == ["keywords"]
    assert [(f["start"], f["end"], f["type"]) for f in out["findings"]] == [
        (0, 12, "classification_mark")
    ]


def test_jsonl_writes_one_line_per_record_in_order(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    records = [{"id": f"r{i}", "text": "CONFIDENTIAL" if i % 3 == 0 else "ok"} for i in range(600)]
    src.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    done = scan("--jsonl", str(src), "--detectors", "keywords")
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [line["id"] for line in lines] == [r["id"] for r in records]
    assert [bool(line["findings"]) for line in lines] == [i % 3 == 0 for i in range(600)]
    assert set(lines[0]["findings"][0]) >= {"start", "end", "type", "category", "detector", "score"}
    assert done.returncode == 1


def test_jsonl_bad_line_gets_an_error_record_and_exit_2() -> None:
    stdin = b'{"id": 1, "text": "ok"}\n{broken\n{"id": 3}\n{"id": 4, "text": "ok"}\n'
    done = scan("--jsonl", "-", "--detectors", "keywords", stdin=stdin)
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [line.get("id") for line in lines] == [1, None, 3, 4]
    assert "invalid JSON" in lines[1]["error"]
    assert 'string "text"' in lines[2]["error"]
    assert done.returncode == 2


def test_invalid_utf8_is_scanned_with_a_note() -> None:
    done = scan("-", "--detectors", "keywords", stdin=b"\xff\xfe CONFIDENTIAL \x00\x01")
    assert done.returncode == 1
    assert b"not valid UTF-8 (first bad byte at 0)" in done.stderr


def test_unknown_detector_is_an_error_listing_known_ones() -> None:
    done = scan("-", "--detectors", "nope")
    assert done.returncode == 2
    known = b"known detectors: classifier, fingerprint, keywords, ner, pii, secrets"
    assert b"unknown detector 'nope'; " + known in done.stderr


def test_missing_file_is_an_error() -> None:
    done = scan("/nonexistent/file.txt", "--detectors", "keywords")
    assert done.returncode == 2
    assert b"cannot read /nonexistent/file.txt" in done.stderr


def test_list_detectors_names_each_detector() -> None:
    done = scan("--list-detectors")
    names = [line.split()[0] for line in done.stdout.decode().splitlines()]
    assert names == ["secrets", "pii", "ner", "keywords", "classifier", "fingerprint"]


@pytest.mark.parametrize("size_mb", [10])
def test_ten_megabyte_input_is_scanned(tmp_path: Path, size_mb: int) -> None:
    path = tmp_path / "big.txt"
    line = "ordinary log line with nothing special in it, id=12345\n"
    body = line * (size_mb * 1024 * 1024 // len(line)) + "CONFIDENTIAL\n"
    path.write_text(body, encoding="utf-8")
    done = scan(str(path), "--json")  # every default detector, spaCy's length limit included
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["findings"][-1]["start"] == len(body) - 13
