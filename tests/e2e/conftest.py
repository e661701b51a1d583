"""The end-to-end stack: a real `dlpproxy run` (mitmdump) on 127.0.0.1, a real HTTPS stand-in for
the AI services on loopback (`dlp_resolve` sends each service host there), and clients that
trust the proxy's CA. Module-scoped, so each test module starts the proxy once."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.servers import FakeAIService

SERVICE_HOSTS = (
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "api.deepseek.com",
    "chatgpt.com",
    "claude.ai",
    "hanbit.openai.azure.com",
)
READY = b"dlpproxy ready"


def self_signed(folder: Path, names: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for these DNS names / IPs, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / f"{names[0]}.pem", folder / f"{names[0]}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Proxy:
    """A running proxy process: where it listens, its CA, log and audit store."""

    proc: subprocess.Popen[bytes]
    port: int
    folder: Path
    ca_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def audit_db(self) -> Path:
        return self.folder / "audit.db"

    @property
    def log(self) -> str:
        return (self.folder / "proxy.log").read_text(errors="replace")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, **options: Any) -> httpx.Client:
        """An httpx client that goes through this proxy and trusts its CA."""
        return httpx.Client(proxy=self.url, verify=self.ssl_context(), timeout=60, **options)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def event(self, incident: str, wait_s: float = 10.0) -> dict[str, Any]:
        """The audit event with this id, once the batched writer has stored it."""
        rows = self.events(f"id = '{incident}'", wait_s=wait_s)
        assert rows, f"no audit event {incident} in {self.audit_db}"
        return rows[0]

    def events(
        self, where: str = "1", wait_for: int = 1, wait_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """Audit rows matching `where`, waiting (the writer batches) until `wait_for` are stored."""
        deadline = time.monotonic() + wait_s
        while True:
            rows = self._rows(where) if self.audit_db.exists() else []
            if len(rows) >= wait_for or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def _rows(self, where: str) -> list[dict[str, Any]]:
        db = sqlite3.connect(f"file:{self.audit_db}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(f"SELECT * FROM events WHERE {where}")]
        except sqlite3.OperationalError:  # the writer has not created the table yet
            return []
        finally:
            db.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_proxy(
    folder: Path, upstream_port: int, extra: Sequence[str] = (), ports: dict[str, int] | None = None
) -> Proxy:
    """`python -m dlpproxy run` with every service host resolved to the loopback upstream
    (or to the port `ports` names for that host)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        sys.executable, "-m", "dlpproxy", "run", "--port", str(port),
        "--ca-dir", str(folder / "ca"), "--audit-db", str(folder / "audit.db"), "--ssl-insecure",
        *extra,
    ]  # fmt: skip
    for host in SERVICE_HOSTS:
        port_for = (ports or {}).get(host, upstream_port)
        cmd += ["--set", f"dlp_resolve={host}=127.0.0.1:{port_for}"]
    log_path = folder / "proxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if READY in log_path.read_bytes() or proc.poll() is not None:
            break
        time.sleep(0.2)
    if proc.poll() is not None or READY not in log_path.read_bytes():
        proc.kill()
        pytest.fail(f"proxy did not start:\n{log_path.read_text(errors='replace')}")
    return Proxy(proc, port, folder, folder / "ca" / "mitmproxy-ca-cert.pem")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAIService]:
    folder = tmp_path_factory.mktemp("upstream")
    cert, key = self_signed(folder, [*SERVICE_HOSTS, "127.0.0.1"])
    server = FakeAIService(cert, key)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService) -> Iterator[Proxy]:
    running = start_proxy(tmp_path_factory.mktemp("proxy"), upstream.port)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> Iterator[httpx.Client]:
    with proxy.client() as http:
        yield http
