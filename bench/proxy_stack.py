"""The processes of the proxy benchmark (bench/proxy.py): a loopback HTTPS upstream that echoes
Chat Completions prompts, plain mitmdump with only a host mapping (bench/plain_resolve.py), and
`dlpproxy run` with the same mitmproxy options."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy import certs

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "api.openai.com"
PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Setup:
    """Where the clients send: a URL, through a proxy or not, trusting `verify`."""

    name: str
    url: str
    proxy: str | None
    verify: ssl.SSLContext
    pid: int | None = None


class ProxyStartError(RuntimeError):
    """A process of the benchmark did not come up; carries the tail of its log."""


def echo_answer(body: bytes) -> bytes:
    """The whole HTTP/1.1 answer to one Chat Completions body: "You said: <last message>".
    One buffer, one write: headers and body in two small writes would meet Nagle's algorithm
    and the peer's delayed ACK (about 40 ms more per answer)."""
    doc = json.loads(body)
    answer = {
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1,
        "model": doc.get("model", ""),
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "You said: " + doc["messages"][-1]["content"]}}],
    }  # fmt: skip
    raw = json.dumps(answer).encode()
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def _answer_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer requests on one keep-alive connection until the peer closes it or sends junk."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(echo_answer(await reader.readexactly(_content_length(head))))
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError, KeyError):
        pass
    finally:
        writer.close()


async def _serve(cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(
        _answer_connection, "127.0.0.1", 0, ssl=context, backlog=512
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


def serve_upstream(cert: str, key: str) -> None:
    """Serve the echo upstream (one asyncio loop: no thread per connection fighting over the
    GIL) until stdin closes; the first line on stdout is its port."""
    asyncio.run(_serve(cert, key))


def start_upstream(folder: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """The echo upstream in its own process: (process, port, the CA file that verifies it)."""
    ca, cert, key = upstream_certificate(folder)
    serve = "import sys; from bench.proxy_stack import serve_upstream as s; s(*sys.argv[1:])"
    proc = subprocess.Popen(
        [sys.executable, "-c", serve, str(cert), str(key)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO_ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        stop_process(proc)
        raise ProxyStartError(f"the upstream did not start (exit {proc.poll()})")
    return proc, int(line), ca


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Close its stdin, ask it to stop, and kill it if it has not stopped in 30 s."""
    if proc.stdin is not None:
        proc.stdin.close()
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def upstream_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """PEM files (CA, certificate, key) for the upstream: a certificate for HOST and 127.0.0.1
    signed by a CA made with mitmproxy's own certificate store."""
    store = certs.CertStore.from_store(folder / "upstream-ca", "upstream", 2048)
    names = [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    entry = store.get_cert(HOST, names)
    cert, key = folder / "upstream.pem", folder / "upstream.key"
    cert.write_bytes(entry.cert.to_pem())
    key.write_bytes(
        entry.privatekey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "upstream-ca" / "upstream-ca-cert.pem", cert, key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return " | ".join(lines[-3:]) or "no output"


def _wait_ready(
    proc: subprocess.Popen[bytes], log: Path, port: int, marker: str, timeout: float
) -> None:
    """Return once the log shows `marker` and the port takes connections; else raise with the
    log's last lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ProxyStartError(f"{log.stem} exited with {proc.returncode}: {_tail(log)}")
        if marker in log.read_text(encoding="utf-8", errors="replace"):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                pass
        time.sleep(0.2)
    raise ProxyStartError(f"{log.stem} not ready after {timeout:.0f} s: {_tail(log)}")


def _trusting(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


class Stack:
    """The upstream, plain mitmproxy and dlpproxy, each its own process, files in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, timeout: float) -> dict[str, Setup]:
        upstream, up, ca = start_upstream(self.folder)
        self.procs.append(upstream)
        route = f"{HOST}=127.0.0.1:{up}"
        plain_port, dlp_port, all_port = _free_port(), _free_port(), _free_port()
        plain = [
            sys.executable, "-c", "from mitmproxy.tools.main import mitmdump; mitmdump()",
            "--listen-host", "127.0.0.1", "--listen-port", str(plain_port),
            "-s", str(Path(__file__).with_name("plain_resolve.py")),
            "--set", f"confdir={self.folder / 'ca-plain'}", "--set", "flow_detail=0",
            "--ssl-insecure", "--set", f"bench_resolve={route}",
        ]  # fmt: skip
        dlp = [
            sys.executable, "-m", "dlpproxy", "run", "--port", str(dlp_port),
            "--ca-dir", str(self.folder / "ca-dlp"), "--audit-db", str(self.folder / "audit.db"),
            "--ssl-insecure", "--set", f"dlp_resolve={route}",
        ]  # fmt: skip
        # the same with mitmdump's whole addon set, to show what the lean set saves
        dlp_all = [
            sys.executable, "-m", "dlpproxy", "run", "--port", str(all_port),
            "--ca-dir", str(self.folder / "ca-dlp-all"),
            "--audit-db", str(self.folder / "audit-all.db"),
            "--ssl-insecure", "--set", f"dlp_resolve={route}", "--mitmproxy-addons", "all",
        ]  # fmt: skip
        ready = "dlpproxy ready"
        pids = {
            "mitmproxy": self._proxy("mitmproxy", plain, plain_port, "proxy listening", timeout),
            "dlpproxy": self._proxy("dlpproxy", dlp, dlp_port, ready, timeout),
            "dlpproxy-all": self._proxy("dlpproxy-all", dlp_all, all_port, ready, timeout),
        }
        url = f"https://{HOST}{PATH}"
        return {
            "direct": Setup("direct", f"https://127.0.0.1:{up}{PATH}", None, _trusting(ca)),
            "mitmproxy": Setup(
                "mitmproxy", url, f"http://127.0.0.1:{plain_port}",
                _trusting(self.folder / "ca-plain" / "mitmproxy-ca-cert.pem"), pids["mitmproxy"],
            ),
            "dlpproxy": Setup(
                "dlpproxy", url, f"http://127.0.0.1:{dlp_port}",
                _trusting(self.folder / "ca-dlp" / "mitmproxy-ca-cert.pem"), pids["dlpproxy"],
            ),
            "dlpproxy-all": Setup(
                "dlpproxy-all", url, f"http://127.0.0.1:{all_port}",
                _trusting(self.folder / "ca-dlp-all" / "mitmproxy-ca-cert.pem"),
                pids["dlpproxy-all"],
            ),
        }  # fmt: skip

    def _proxy(self, name: str, cmd: list[str], port: int, marker: str, timeout: float) -> int:
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        self.procs.append(proc)
        _wait_ready(proc, log, port, marker, timeout)
        return proc.pid

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and all its threads (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise ProxyStartError(f"no VmRSS for process {pid}")
