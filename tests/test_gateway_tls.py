"""`dlpproxy gateway --tls-cert/--tls-key`: the real command serving HTTPS on loopback, and clear
refusals for certificate files it cannot use."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import self_signed
from tests.test_gateway_stack import (
    OPENAI_MODELS,
    PROVIDER_KEY,
    PROVIDER_KEY_ENV,
    free_port,
    write_config,
    write_policy,
)


def _cmd(folder: Path, port: int, *extra: str) -> tuple[list[str], str]:
    """The gateway command (providers and local model unreachable: not needed here) and the
    app key its configuration holds."""
    config, app = write_config(folder, "http://127.0.0.1:9/v1")
    policy = write_policy(folder, "http://127.0.0.1:9/v1", "tiny")
    cmd = [sys.executable, "-m", "dlpproxy", "gateway", "--listen", f"127.0.0.1:{port}",
           "--config", str(config), "--policy", str(policy),
           "--audit-db", str(folder / "audit.db"), "--detectors", "secrets", *extra]  # fmt: skip
    return cmd, app


@pytest.fixture(scope="module")
def https_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """The gateway on HTTPS: its /v1 URL, an app key, and the certificate to trust."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key_file = self_signed(folder, ["127.0.0.1"])
    port = free_port()
    cmd, app = _cmd(folder, port, "--tls-cert", str(cert), "--tls-key", str(key_file))
    log = folder / "gateway.log"
    env = {**os.environ, PROVIDER_KEY_ENV: PROVIDER_KEY}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while b"listening on" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert f"https://127.0.0.1:{port}/v1" in log.read_text()
        yield f"https://127.0.0.1:{port}/v1", app, cert
    finally:
        proc.terminate()
        proc.wait(30)


def test_gateway_answers_over_https(https_gateway: tuple[str, str, Path]) -> None:
    url, app, cert = https_gateway
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
        answer = client.get(f"{url}/models", headers={"authorization": f"Bearer {app}"})
    assert answer.status_code == 200
    assert {m["id"] for m in answer.json()["data"]} >= set(OPENAI_MODELS)


def test_plain_http_to_the_https_port_gets_no_answer(https_gateway: tuple[str, str, Path]) -> None:
    url, app, _ = https_gateway
    with pytest.raises(httpx.HTTPError), httpx.Client(timeout=5) as client:
        client.get(url.replace("https://", "http://") + "/models",
                   headers={"authorization": f"Bearer {app}"})  # fmt: skip


def _refused(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd, _ = _cmd(folder, free_port(), *extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_certificate_without_key_is_refused(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path, ["127.0.0.1"])
    done = _refused(tmp_path, "--tls-cert", str(cert))
    assert done.returncode == 2
    assert "--tls-cert and --tls-key go together" in done.stderr


def test_missing_and_mismatched_files_are_named(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path, ["127.0.0.1"])
    missing = tmp_path / "nope.key"
    done = _refused(tmp_path, "--tls-cert", str(cert), "--tls-key", str(missing))
    assert done.returncode == 2 and f"TLS key {missing}: no such file" in done.stderr
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, other_key = self_signed(other_dir, ["localhost"])
    done = _refused(tmp_path, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert done.returncode == 2 and f"TLS certificate {cert} with key {other_key}" in done.stderr
