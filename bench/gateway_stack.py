"""The processes of the gateway benchmark (bench/gateway.py): the tiny model on llama-cpp-python's
server, `dlpproxy gateway` rerouting to it, a bare TCP relay to it (bench/peers/tcp_relay.py) and
the LiteLLM proxy forwarding to it (from .peers/litellm, bench/setup_peers.sh)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from bench.proxy_stack import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
KEY_ENV = "DLPPROXY_BENCH_PROVIDER_KEY"
RELAY = ROOT / "bench" / "peers" / "tcp_relay.py"
LITELLM_VENV = ROOT / ".peers" / "litellm"
LITELLM_KEY = "sk-bench-litellm"
# LiteLLM offline: the model price map bundled in the package instead of the one it fetches from
# GitHub at import, no telemetry, no admin UI, no proxy database; production mode (no .env file
# read from the working directory), errors only in its log.
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_TELEMETRY": "False",
    "DISABLE_ADMIN_UI": "True",
    "HF_HUB_OFFLINE": "1",
    "LITELLM_LOG": "ERROR",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text(errors='replace')[-2000:]}")


@contextlib.contextmanager
def served(
    cmd: Sequence[str], log: Path, ready_url: str, timeout: float,
    env: Mapping[str, str] | None = None,
) -> Iterator[int]:  # fmt: skip
    """A server process writing to `log`, up once `ready_url` answers; yields its process id."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    try:
        wait_for(ready_url, proc, log, timeout)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, its exited threads included, to the nanosecond:
    the kernel's CPU clock of that process (clock_getcpuclockid(3) computes the same clock id).
    /proc/PID/stat counts in clock ticks (10 ms), too coarse for the relay's share of a stream."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:
        return cpu_seconds(pid)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its live descendants (a server may fork workers)."""
    total = process_cpu_seconds(pid)
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text(encoding="ascii").split():
                with contextlib.suppress(OSError):
                    total += tree_cpu_seconds(int(child))
    return total


@contextlib.contextmanager
def local_server(folder: Path, timeout: float) -> Iterator[str]:
    """The tiny GGUF model served by llama-cpp-python's server; yields its /v1 base URL."""
    sys.path.insert(0, str(ROOT))
    from tests.support.tiny_gguf import write_tiny_gguf

    model = write_tiny_gguf(folder / "tiny.gguf")
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
           "127.0.0.1", "--port", str(port), "--model_alias", "tiny", "--n_ctx", "2048",
           "--verbose", "False", "--n_threads", "1", "--interrupt_requests", "False"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with served(cmd, folder / "llama.log", f"{url}/models", timeout):
        yield url


@contextlib.contextmanager
def gateway(folder: Path, local_url: str, timeout: float) -> Iterator[tuple[str, str, int]]:
    """`dlpproxy gateway` rerouting secrets to `local_url`; yields its /v1 URL, an app key and
    its process id."""
    from dlpproxy.gateway.config import new_key

    key, line = new_key("bench")
    (folder / "gateway.yaml").write_text(
        "version: 1\nproviders:\n  openai:\n"
        f"    base_url: http://127.0.0.1:{free_port()}/v1\n    api_key_env: {KEY_ENV}\n"
        f"keys:\n{line}\n"
    )
    (folder / "policy.yaml").write_text(
        "version: 1\nlocal_models:\n  company:\n"
        f"    base_url: {local_url}\n    model: tiny\n    timeout_s: 120\n"
        "reroute:\n  model: company\n  banner: ''\n"
        "rules:\n  - {id: reroute-secrets, category: secret, action: reroute}\n"
    )
    port = free_port()
    cmd = [sys.executable, "-m", "dlpproxy", "gateway", "--listen", f"127.0.0.1:{port}",
           "--config", str(folder / "gateway.yaml"), "--policy", str(folder / "policy.yaml"),
           "--audit-db", str(folder / "audit.db")]  # fmt: skip
    env = {**os.environ, KEY_ENV: "sk-never-used"}
    url = f"http://127.0.0.1:{port}/v1"
    with served(cmd, folder / "gateway.log", f"{url}/models", timeout, env) as pid:
        yield url, key, pid


@contextlib.contextmanager
def relay(folder: Path, local_url: str, timeout: float) -> Iterator[tuple[str, int]]:
    """bench/peers/tcp_relay.py in front of `local_url`; yields the same /v1 URL through the
    relay and the relay's process id."""
    target = httpx.URL(local_url)
    port = free_port()
    cmd = [sys.executable, str(RELAY), "--listen", f"127.0.0.1:{port}",
           "--target", f"{target.host}:{target.port}"]  # fmt: skip
    url = f"http://127.0.0.1:{port}{target.path.rstrip('/')}"
    with served(cmd, folder / "relay.log", f"{url}/models", timeout) as pid:
        yield url, pid


def litellm_missing() -> str | None:
    """Why the LiteLLM peer cannot run here, or None when its venv is installed."""
    if not (LITELLM_VENV / ".installed").is_file() or not (LITELLM_VENV / "bin/litellm").is_file():
        return "LiteLLM is not installed in .peers/litellm (bench/setup_peers.sh installs it)"
    return None


def litellm_version() -> str:
    found = sorted((LITELLM_VENV / "lib").glob("python*/site-packages/litellm-*.dist-info"))
    return found[-1].name.removesuffix(".dist-info").split("-", 1)[1] if found else "?"


def litellm_config(local_url: str) -> str:
    """LiteLLM proxy config: model `tiny` on an OpenAI-compatible server at `local_url`, a
    master key, no callbacks, no telemetry."""
    return (
        "model_list:\n  - model_name: tiny\n    litellm_params:\n      model: openai/tiny\n"
        f"      api_base: {local_url}\n      api_key: sk-local-unused\n"
        "litellm_settings:\n  telemetry: false\n  callbacks: []\n  success_callback: []\n"
        "  failure_callback: []\n"
        f"general_settings:\n  master_key: {LITELLM_KEY}\n  disable_spend_logs: true\n"
    )


@contextlib.contextmanager
def litellm(folder: Path, local_url: str, timeout: float) -> Iterator[tuple[str, str, int]]:
    """The LiteLLM proxy forwarding model `tiny` to `local_url`; yields its /v1 URL, its key and
    its process id."""
    (folder / "litellm.yaml").write_text(litellm_config(local_url))
    port = free_port()
    cmd = [str(LITELLM_VENV / "bin/litellm"), "--config", str(folder / "litellm.yaml"),
           "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPENAI_API_KEY")}
    env |= LITELLM_ENV
    base = f"http://127.0.0.1:{port}"
    with served(cmd, folder / "litellm.log", f"{base}/health/liveliness", timeout, env) as pid:
        yield f"{base}/v1", LITELLM_KEY, pid
