"""The mitmproxy master `dlpproxy run` starts: the lean addon set by default, mitmdump's full set
on request, one engine build at start, clear refusals for options nothing defines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from dlpproxy.proxy.master import all_addons, lean_addons
from tests.e2e.conftest import Proxy, start_proxy
from tests.e2e.servers import FakeAIService

KEY = "AKIAZ7QRST2VWX3YB4CD"
URL = "https://api.openai.com/v1/chat/completions"


def _names(addons: list[object]) -> set[str]:
    return {type(a).__name__ for a in addons}


def test_lean_set_keeps_the_proxy_and_drops_flow_saving_and_editing() -> None:
    lean, full = _names(lean_addons()), _names(all_addons())
    assert lean < full
    needed = {"Core", "Block", "ProxyAuth", "Proxyserver", "NextLayer", "TlsConfig",
              "UpstreamAuth", "ScriptLoader", "DisableH2C", "DnsResolver"}  # fmt: skip
    assert needed <= lean
    # raw prompts must not reach a flow file; nothing rewrites or replays traffic behind DLP
    dropped = {"Save", "SaveHar", "MapLocal", "MapRemote", "ModifyBody", "ModifyHeaders",
               "ServerPlayback", "ClientPlayback", "Dumper", "Onboarding"}  # fmt: skip
    assert dropped <= full and not dropped & lean


def _ask(client: httpx.Client, content: str) -> httpx.Response:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}
    return client.post(URL, json=body, headers={"authorization": "Bearer sk-test"})


def _serves(proxy: Proxy, upstream: FakeAIService) -> None:
    with proxy.client() as client:
        clean = _ask(client, "What is the capital of France?")
        assert clean.json()["choices"][0]["message"]["content"].startswith("You said:")
        before = len(upstream.received)
        blocked = _ask(client, f"why does boto fail with {KEY} ?")
        assert blocked.headers.get("x-dlpproxy-incident")
        assert len(upstream.received) == before


def test_default_proxy_builds_its_engine_once(proxy: Proxy, upstream: FakeAIService) -> None:
    _serves(proxy, upstream)
    assert proxy.log.count("dlpproxy configured") == 1, proxy.log[-2000:]
    assert proxy.log.count("dlpproxy ready") == 1, proxy.log[-2000:]


def test_all_of_mitmdumps_addons_on_request(tmp_path: Path, upstream: FakeAIService) -> None:
    running = start_proxy(tmp_path, upstream.port, ["--mitmproxy-addons", "all"])
    try:
        _serves(running, upstream)
        assert running.log.count("dlpproxy configured") == 1
        assert running.log.count("dlpproxy ready") == 1
    finally:
        running.stop()


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dlpproxy", "run", "--port", "0", "--ca-dir",
           str(tmp_path / "ca"), "--audit-db", str(tmp_path / "audit.db"), *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_an_option_of_a_dropped_addon_is_refused_by_name(tmp_path: Path) -> None:
    done = _run(tmp_path, "--set", f"save_stream_file={tmp_path / 'flows'}")
    assert done.returncode == 2
    assert "unknown option(s): save_stream_file" in done.stderr
    assert not (tmp_path / "flows").exists()


def test_a_broken_policy_stops_the_start_with_the_file_named(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("- not a mapping\n")
    done = _run(tmp_path, "--policy", str(policy))
    assert done.returncode == 2
    assert str(policy) in done.stderr and "mapping" in done.stderr


def test_scripts_still_load_with_the_lean_set(tmp_path: Path, upstream: FakeAIService) -> None:
    """`--set scripts=...` (mitmproxy's script loader is kept): a site's own addon runs beside
    dlpproxy's and sees the prompts dlpproxy let through."""
    script = tmp_path / "tag.py"
    script.write_text("def request(flow):\n    flow.request.headers['x-site-addon'] = 'seen'\n")
    running = start_proxy(tmp_path / "proxy", upstream.port, ["--set", f"scripts={script}"])
    try:
        with running.client() as client:
            assert _ask(client, "What is the capital of France?").status_code == 200
        assert upstream.received[-1]["headers"].get("x-site-addon") == "seen"
    finally:
        running.stop()
