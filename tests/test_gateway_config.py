"""gateway.yaml, key minting, and `dlpproxy gateway` as a real process.

The configuration is refused with the file, line and problem when it is wrong (a raw key where a
hash belongs, a provider key missing from the environment, an unknown field); `--new-key` prints
a key once and a line holding only its hash; the command-line gateway serves a clean prompt to a
recording stand-in provider, refuses a bad key, blocks a secret, and flushes its audit on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dlpproxy.cli import main
from dlpproxy.errors import RulePackError
from dlpproxy.gateway.config import AppKey, load_gateway_config
from tests.test_gateway_stack import (
    KEY,
    PROVIDER_KEY,
    PROVIDER_KEY_ENV,
    Provider,
    free_port,
    write_config,
)

ROOT = Path(__file__).resolve().parent.parent
ENV = {PROVIDER_KEY_ENV: PROVIDER_KEY}


def test_new_key_prints_the_key_once_and_a_line_with_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gateway", "--new-key", "billing-bot", "--groups", "finance, ops"]) == 0
    out = capsys.readouterr().out
    key = re.search(r"^\s+(dlpgw-\S+)$", out, re.M)
    line = re.search(r"^(\s+- \{app: .*\})$", out, re.M)
    assert key and line, out
    assert key.group(1) not in line.group(1)
    path = tmp_path / "gateway.yaml"
    path.write_text(f"version: 1\nkeys:\n{line.group(1)}\n")
    config = load_gateway_config(path, {})
    assert config.app_for(key.group(1)) == AppKey("billing-bot", ("finance", "ops"))
    assert config.app_for(key.group(1) + "x") is None
    assert config.app_for("") is None


def test_new_key_refuses_an_odd_app_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--new-key", "billing bot"]) == 2
    assert "app or group name 'billing bot'" in capsys.readouterr().err
    assert main(["gateway", "--new-key", "bot", "--groups", "a,{b}"]) == 2
    assert "name '{b}'" in capsys.readouterr().err


BAD_CONFIGS = {
    "raw-key": ("version: 1\nkeys:\n  - {app: a, sha256: dlpgw-abc}\n",
                "gateway.yaml:3: keys: 'a': sha256"),
    "missing-env": ("version: 1\nproviders:\n  openai:\n    base_url: https://api.openai.com/v1\n"
                    "    api_key_env: NOT_SET_ANYWHERE\n", "environment variable NOT_SET_ANYWHERE"),
    "bad-url": ("version: 1\nproviders:\n  openai:\n    base_url: api.openai.com\n",
                "not an http(s) URL"),
    "unknown-provider": ("version: 1\nproviders:\n  gemini: {}\n", "unknown provider 'gemini'"),
    "unknown-field": ("version: 1\nfallback: true\n", "unknown field 'fallback'"),
    "version": ("version: 2\n", "expected 'version: 1'"),
    "yaml": ("version: 1\nkeys: [\n", "invalid YAML"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "problem"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_config_errors_name_the_file_line_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(RulePackError, match=re.escape(problem)):
        load_gateway_config(path, {})


def test_provider_key_is_read_from_the_environment_and_never_shown(tmp_path: Path) -> None:
    config_path, _ = write_config(tmp_path, "https://api.openai.com/v1")
    config = load_gateway_config(config_path, ENV)
    assert config.providers["openai"].api_key == PROVIDER_KEY
    assert PROVIDER_KEY not in config_path.read_text()
    assert PROVIDER_KEY not in repr(config)


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    yield server
    server.stop()


def test_command_line_gateway_serves_refuses_blocks_and_flushes_its_audit(
    tmp_path: Path, provider: Provider
) -> None:
    config, key = write_config(tmp_path, provider.base_url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nrules:\n  - {id: block-secrets, category: secret, action: block}\n"
    )
    port, db = free_port(), tmp_path / "audit.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlpproxy", "gateway", "--listen", f"127.0.0.1:{port}",
         "--config", str(config), "--policy", str(policy), "--audit-db", str(db),
         "--detectors", "secrets"],
        cwd=ROOT, env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert f"listening on http://127.0.0.1:{port}/v1" in first, first
        url, auth = f"http://127.0.0.1:{port}/v1", {"authorization": f"Bearer {key}"}
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]}
        assert httpx.post(f"{url}/chat/completions", json=body).status_code == 401
        answer = httpx.post(f"{url}/chat/completions", json=body, headers=auth)
        assert answer.json()["choices"][0]["message"]["content"] == "You said: hi there"
        secret = {**body, "messages": [{"role": "user", "content": f"key {KEY} fails"}]}
        blocked = httpx.post(f"{url}/chat/completions", json=secret, headers=auth)
        assert "blocked" in blocked.json()["choices"][0]["message"]["content"]
        assert len(provider.received) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert PROVIDER_KEY not in output and key not in output
    rows = _events(db)
    assert [(r["action"], r["user"], r["service"]) for r in rows] == [
        ("allow", "billing-bot", "gateway:openai"), ("block", "billing-bot", "gateway:openai"),
    ]  # fmt: skip
    assert KEY not in json.dumps(rows)


def _events(db: Path) -> list[dict[str, object]]:
    import sqlite3

    deadline = time.monotonic() + 5
    while not db.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM events ORDER BY ts")]
    finally:
        con.close()


def test_command_line_gateway_reports_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("version: 1\nproviders:\n  openai:\n    base_url: http://x\n"
                      "    api_key_env: DLPGW_NOT_SET\n")  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "dlpproxy", "gateway", "--config", str(config),
         "--listen", f"127.0.0.1:{free_port()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k != "DLPGW_NOT_SET"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "environment variable DLPGW_NOT_SET" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_listen_address_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--listen", "localhost"]) == 2
    assert "--listen 'localhost' is not HOST:PORT" in capsys.readouterr().err


def test_example_config_loads() -> None:
    env = {"OPENAI_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-b"}
    config = load_gateway_config(ROOT / "examples" / "gateway.yaml", env)
    assert config.fallback_to_local
    assert set(config.providers) == {"openai", "anthropic"}
    assert [a.app for a in config.keys.values()] == ["example-app"]
