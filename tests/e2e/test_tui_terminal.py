"""`dlpproxy tui` in a real terminal (tmux) over the store of a real proxy: prompts go through
the proxy, the console shows them, filters, opens an incident, and a policy toggle made in the
console is picked up by the running proxy. The screen is read with `tmux capture-pane`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Proxy, start_proxy
from tests.e2e.servers import FakeAIService
from tests.tui_store import POLICY

KEY = "AKIAZ7QRST2VWX3YB4CD"
URL = "https://api.openai.com/v1/chat/completions"
TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


def ask(client: httpx.Client, content: str) -> httpx.Response:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}
    return client.post(URL, json=body, headers={"authorization": "Bearer sk-test"})


class Terminal:
    """One tmux server of our own (its own socket), one 80x24 window running a command."""

    def __init__(self, folder: Path, command: list[str]):
        self.socket = f"dlptui-{os.getpid()}-{time.monotonic_ns()}"
        self.status = folder / "exit-status"
        shell = " ".join(_quote(c) for c in command) + f"; echo $? > {_quote(str(self.status))}"
        self.tmux("new-session", "-d", "-s", "tui", "-x", "80", "-y", "24", shell)

    def tmux(self, *args: str) -> str:
        done = subprocess.run([TMUX or "tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=10, check=True)  # fmt: skip
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui")

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: Escape followed at once by a key reads as Alt+key
            self.tmux("send-keys", "-t", "tui", key)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "tui", "-l", text)

    def wait_for(self, needle: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if needle in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} never appeared; the screen:\n{self.screen()}")

    def exit_status(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.status.exists():
            time.sleep(0.1)
        return int(self.status.read_text().strip())

    def close(self) -> None:
        subprocess.run([TMUX or "tmux", "-L", self.socket, "kill-server"], capture_output=True)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def tui_proxy(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAIService) -> Iterator[Proxy]:
    """A proxy of our own on a copy of the policy, which the console will edit."""
    folder = tmp_path_factory.mktemp("tui-proxy")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY.read_text(encoding="utf-8"), encoding="utf-8")
    running = start_proxy(folder, upstream.port, extra=["--policy", str(policy)])
    yield running
    running.stop()


def test_console_over_a_real_proxy_store(tui_proxy: Proxy, tmp_path: Path) -> None:
    policy = tui_proxy.folder / "policy.yaml"
    with tui_proxy.client() as client:
        assert ask(client, "What is the capital of France?").status_code == 200
        blocked = ask(client, f"why does boto fail with aws_access_key_id = {KEY} ?")
        incident = blocked.headers["x-dlpproxy-incident"]
        ask(client, "Write a polite reminder to jiwoo.park@example-corp.co.kr")
    assert tui_proxy.event(incident)["action"] == "block"
    assert len(tui_proxy.events(wait_for=3)) >= 3

    command = [sys.executable, "-m", "dlpproxy", "tui", "--db", str(tui_proxy.audit_db),
               "--policy", str(policy), "--poll", "0.3"]  # fmt: skip
    term = Terminal(tmp_path, command)
    try:
        shown = term.wait_for("LIVE · everything · 3 rows")
        assert "block" in shown and "redact" in shown and "allow" in shown

        term.keys("/")
        term.type("action:block")
        term.keys("Enter")
        shown = term.wait_for("LIVE · action:block · 1 rows")
        assert "redact" not in shown.split("action:block", 1)[1]

        term.keys("Enter")
        shown = term.wait_for(incident)
        assert "rule block-secrets" in shown and "rule aws-access-key-id" in shown, shown
        assert KEY not in shown  # only the masked excerpt
        term.keys("Escape")
        term.wait_for("LIVE · action:block")

        term.keys("s")  # the proxy's heartbeat row, refreshed every 5 s
        shown = term.wait_for("detectors secrets,pii,keywords", timeout=20)
        assert "alive" in shown and "local models: not configured" in shown

        term.keys("p")
        term.wait_for("fingerprint")
        term.keys("Down", "Space")  # packs.secrets: enforce -> monitor
        term.wait_for("saved packs.secrets = monitor")
        assert "  secrets: monitor" in policy.read_text()
        time.sleep(1.2)  # the proxy looks at the file's stamp once a second
        with tui_proxy.client() as client:
            again = ask(client, f"aws_access_key_id = {KEY}")
        assert again.status_code == 200 and "You said" in again.text  # passed: monitor mode
        assert tui_proxy.events("action = 'monitor'")[0]["would"] == "block"

        term.keys("l")
        term.keys("c")
        term.wait_for("LIVE · everything · 4 rows")
        term.keys("q")
        assert term.exit_status() == 0
    finally:
        term.close()
