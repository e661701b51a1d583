"""A real OpenAI-compatible local model for the tests: llama-cpp-python's server on 127.0.0.1
serving the tiny GGUF model of tiny_gguf.py.

`local_model_server` (session-scoped) starts it once per test session; `running_local_model`
starts one anywhere else (the benchmarks). Without the `localmodel` extra the fixture fails,
never skips: the reroute tests must run against the real server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.tiny_gguf import write_tiny_gguf

MODEL_NAME = "tiny"
N_CTX = 8192  # prompts tokenize at about one token per character of code
MISSING = (
    "llama-cpp-python is not installed in this environment: run `make test` (installs the "
    "localmodel extra: pip install -e '.[dev,localmodel]')"
)


@dataclass(frozen=True, slots=True)
class LocalModelServer:
    base_url: str  # the OpenAI base, http://127.0.0.1:<port>/v1
    model: str
    port: int
    model_path: Path
    pid: int


class LocalModelServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_local_model(
    folder: Path | None = None, *, port: int | None = None, n_ctx: int = N_CTX,
    threads: int = 1, startup_timeout_s: float = 60.0, model: Path | None = None,
) -> Iterator[LocalModelServer]:  # fmt: skip
    """Write the tiny model (or serve `model`), start the server, wait until /v1/models
    answers; stop it after (terminate, then kill)."""
    if not _installed("llama_cpp", "gguf"):
        raise LocalModelServerError(MISSING)
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tinyllm-")))
        model = model or write_tiny_gguf(folder / "tiny.gguf")
        port = port or free_port()
        log_path = folder / "server.log"
        log = stack.enter_context(log_path.open("wb"))
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model),
            "--model_alias", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--n_threads_batch", str(threads), "--verbose", "False", "--embedding", "True",
            # by default a waiting request makes the server end the running stream early
            "--interrupt_requests", "False",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        stack.callback(_stop, proc)
        server = LocalModelServer(f"http://127.0.0.1:{port}/v1", MODEL_NAME, port, model, proc.pid)
        _wait_until_up(server, proc, log_path, startup_timeout_s)
        yield server


def _installed(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):  # ValueError: blocked with sys.modules[name] = None
        return False


def _wait_until_up(
    server: LocalModelServer, proc: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalModelServerError(
                f"llama_cpp.server exited with {proc.returncode}:\n{_tail(log)}"
            )
        try:
            if (
                httpx.get(server.base_url + "/models", timeout=1, trust_env=False).status_code
                == 200
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    waited = f"did not answer on {server.base_url} within {timeout_s:g} s"
    raise LocalModelServerError(f"llama_cpp.server {waited}:\n{_tail(log)}")


def _tail(log: Path, size: int = 4000) -> str:
    return log.read_bytes().decode("utf-8", "replace")[-size:]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def local_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """The real llama.cpp server with the tiny model, shared by the whole test session."""
    try:
        with running_local_model(tmp_path_factory.mktemp("local-model")) as server:
            yield server
            return
    except LocalModelServerError as exc:
        failure = str(exc)
    pytest.fail(failure, pytrace=False)
