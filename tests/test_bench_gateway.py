"""The gateway benchmark's own parts: the table with the relay and LiteLLM beside the gateway, the
answer check, the CPU clock, and the TCP relay (bench/peers/tcp_relay.py) as a real process in
front of real loopback servers. No llama server and no LiteLLM needed."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from bench import gateway_stack as stack
from bench.gateway import Level, Target, _note, measure, mismatches, render, slice_order


def level(
    setup: str, answer: str, streams: int, ttft: float, rate: float, cpu: float | None
) -> Level:
    return Level(setup, answer, streams, 60, 0, ttft, ttft + 2, ttft + 3, ttft + 5, rate, cpu)


def test_render_puts_each_setup_with_what_it_adds_to_direct() -> None:
    levels = [
        level("direct", "short", 1, 4.0, 130.0, None),
        level("relay", "short", 1, 4.5, 117.0, 0.3),
        level("litellm", "short", 1, 19.0, 39.0, 15.0),
        level("gateway", "short", 1, 6.0, 97.5, 2.5),
    ]
    text = render(levels, {"relay": 0, "litellm": 2, "gateway": 0}, "the note")
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    setups = [row.split("|")[1].strip() for row in rows]
    assert setups == ["direct", "relay", "**added / loss**", "litellm", "**added / loss**",
                      "gateway", "**added / loss**"]  # fmt: skip
    assert "**+0.50 ms**" in rows[2] and "**10.0 % loss**" in rows[2]
    assert "**+15.00 ms**" in rows[4] and "**70.0 % loss**" in rows[4]
    assert "**+2.00 ms**" in rows[6] and "**25.0 % loss**" in rows[6]
    assert [row.split("|")[11].strip() for row in rows[:2]] == ["-", "0.3"]
    assert "differ from every direct answer: relay 0, litellm 2, gateway 0." in text
    assert "the note" in text


def test_render_groups_levels_by_answer_and_streams_without_litellm() -> None:
    levels = [
        level("direct", "short", 1, 4.0, 100.0, None),
        level("relay", "short", 1, 4.2, 95.0, 0.3),
        level("gateway", "short", 1, 6.0, 75.0, 2.5),
        level("direct", "long", 20, 1600.0, 10.0, None),
        level("relay", "long", 20, 1610.0, 9.0, 2.0),
        level("gateway", "long", 20, 1900.0, 8.0, 21.0),
    ]
    text = render(levels, {"relay": 0, "gateway": 0}, "")
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 10
    assert [r.split("|")[2].strip() for r in rows] == ["short"] * 5 + ["long"] * 5
    assert "**+300.00 ms**" in rows[9] and "**20.0 % loss**" in rows[9]
    assert "litellm" not in text


def test_render_has_no_loss_when_direct_completed_nothing() -> None:
    text = render([level("direct", "short", 1, 4.0, 0.0, None),
                   level("gateway", "short", 1, 6.0, 80.0, 2.0)], {"gateway": 0}, "")  # fmt: skip
    assert "% loss" not in text


def test_slices_rotate_the_order_of_the_setups() -> None:
    names = ["direct", "relay", "litellm", "gateway"]
    orders = [slice_order(names, k) for k in range(5)]
    assert orders[0] == names
    assert orders[1] == ["relay", "litellm", "gateway", "direct"]
    assert orders[4] == names
    assert {o[0] for o in orders[:4]} == set(names)


def test_mismatches_counts_answers_unlike_any_direct_one() -> None:
    got = {
        "direct": [(1.0, 2.0, " blue oceans."), (1.0, 2.0, " blue oceans.")],
        "relay": [(1.0, 2.0, " blue oceans.")],
        "litellm": [(1.0, 2.0, " blue oceans"), (1.0, 2.0, "")],
    }
    assert mismatches(got) == {"relay": 0, "litellm": 2}


def test_note_says_why_litellm_rows_are_missing() -> None:
    args = argparse.Namespace(gateway_long_tokens=128)
    why = {"litellm": "LiteLLM did not start: http://x did not come up:\nTraceback ..."}
    note = _note(args, ["direct", "relay", "gateway"], why)
    assert "LiteLLM did not start: http://x did not come up:: no litellm rows." in note
    assert "Traceback" not in note
    assert "`relay` is a bare TCP byte relay" in note
    assert "`litellm` is the LiteLLM proxy" not in note
    assert "the CPU column is that process's (relay, gateway, with its children)" in note
    assert "long (128 tokens)" in note


def test_note_leaves_long_answers_out_when_there_are_none() -> None:
    note = _note(argparse.Namespace(gateway_long_tokens=0), ["direct", "gateway"], {})
    assert "long (" not in note
    assert "`relay`" not in note
    assert "(gateway, with its children)" in note


def test_litellm_is_missing_until_its_venv_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "LITELLM_VENV", tmp_path)
    assert "not installed in .peers/litellm" in (stack.litellm_missing() or "")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "litellm").write_text("#!/bin/sh\n")
    assert stack.litellm_missing() is not None  # no .installed mark: the install did not finish
    (tmp_path / ".installed").touch()
    assert stack.litellm_missing() is None
    site = tmp_path / "lib" / "python3.12" / "site-packages" / "litellm-1.103.6.dist-info"
    site.mkdir(parents=True)
    assert stack.litellm_version() == "1.103.6"


def test_litellm_config_names_model_tiny_on_the_local_server() -> None:
    config = yaml.safe_load(stack.litellm_config("http://127.0.0.1:9/v1"))
    (model,) = config["model_list"]
    assert model["model_name"] == "tiny"
    assert model["litellm_params"]["model"] == "openai/tiny"
    assert model["litellm_params"]["api_base"] == "http://127.0.0.1:9/v1"
    assert config["litellm_settings"]["telemetry"] is False
    assert config["general_settings"]["master_key"] == stack.LITELLM_KEY
    assert "database_url" not in config["general_settings"]


def test_process_cpu_clock_counts_exited_threads_finer_than_ticks() -> None:
    code = (
        "import threading, time\n"
        "def burn():\n    end = time.thread_time() + 0.15\n"
        "    while time.thread_time() < end: pass\n"
        "t = threading.Thread(target=burn); t.start(); t.join()\n"
        "print('done', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"done\n"
        seconds = stack.process_cpu_seconds(proc.pid)
        assert 0.15 <= seconds < 2.0
        assert seconds * 100 != int(seconds * 100)  # /proc/PID/stat would say 0.15 or 0.16
        assert stack.tree_cpu_seconds(proc.pid) == pytest.approx(seconds, abs=0.01)
    finally:
        proc.kill()
        proc.wait()


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def start_relay(target_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """bench/peers/tcp_relay.py to 127.0.0.1:target_port, and the port it listens on."""
    cmd = [sys.executable, str(stack.RELAY), "--target", f"127.0.0.1:{target_port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line.startswith("listening 127.0.0.1:"), line
    return proc, int(line.rsplit(":", 1)[1])


@pytest.fixture
def relay_port(echo_port: int) -> Iterator[int]:
    proc, port = start_relay(echo_port)
    yield port
    proc.terminate()
    proc.wait(10)


def receive_all(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def test_relay_passes_bytes_both_ways_as_they_come(relay_port: int) -> None:
    with socket.create_connection(("127.0.0.1", relay_port), timeout=5) as sock:
        for piece in (b"data: {}\n\n", b"x", b"\x00\xff" * 100):
            sock.sendall(piece)
            got = b""
            while len(got) < len(piece):
                got += sock.recv(65536)
            assert got == piece


def test_relay_carries_megabytes_and_passes_the_half_close_on(relay_port: int) -> None:
    payload = bytes(range(256)) * 16384  # 4 MiB: more than the socket buffers hold
    with socket.create_connection(("127.0.0.1", relay_port), timeout=10) as sock:

        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        got = receive_all(sock)  # the echo server closes once it has seen our EOF
        sender.join()
    assert got == payload


def test_relay_keeps_connections_apart(relay_port: int) -> None:
    socks = [socket.create_connection(("127.0.0.1", relay_port), timeout=5) for _ in range(5)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(f"client {i}".encode())
        assert [s.recv(100) for s in socks] == [f"client {i}".encode() for i in range(5)]
    finally:
        for sock in socks:
            sock.close()


def test_relay_closes_the_client_when_the_target_refuses() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed_port = spare.getsockname()[1]
    proc, port = start_relay(closed_port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            began = time.monotonic()
            assert receive_all(sock) == b""
            assert time.monotonic() - began < 2
    finally:
        proc.terminate()
        proc.wait(10)


def test_relay_rejects_a_target_without_a_port() -> None:
    done = subprocess.run([sys.executable, str(stack.RELAY), "--target", "localhost"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2
    assert "'localhost': expected HOST:PORT" in done.stderr


class ChatStream(BaseHTTPRequestHandler):
    """An OpenAI-style streamed chat answer, the same every time (the server's `answer`)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._send(b'{"data": []}', "application/json")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        events = [{"choices": [{"delta": {"role": "assistant"}}]}]
        events += [{"choices": [{"delta": {"content": w}}]} for w in self.server.answer]  # type: ignore[attr-defined]
        body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
        self._send(body + b"data: [DONE]\n\n", "text/event-stream")

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatStream)
    server.daemon_threads = True
    server.answer = [" blue", " oceans", "."]  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_measure_through_the_relay_process_finds_the_direct_answers(
    chat_server: ThreadingHTTPServer, tmp_path: Path
) -> None:
    local_url = f"http://127.0.0.1:{chat_server.server_address[1]}/v1"
    with stack.relay(tmp_path, local_url, timeout=30) as (url, pid):
        targets = {
            "direct": Target(f"{local_url}/chat/completions", {}),
            "relay": Target(f"{url}/chat/completions", {}, pid),
        }
        found, mismatched = asyncio.run(measure(targets, [("short", 1, 5), ("short", 3, 10)], 0))
    assert mismatched == {"relay": 0}
    assert [(lv.setup, lv.streams, lv.requests, lv.errors) for lv in found] == [
        ("direct", 1, 5, 0), ("relay", 1, 5, 0), ("direct", 3, 10, 0), ("relay", 3, 10, 0)
    ]  # fmt: skip
    assert all(lv.per_second > 0 and lv.ttft_p50 <= lv.total_p50 for lv in found)
    assert found[0].cpu_ms is None and found[1].cpu_ms is not None and found[1].cpu_ms > 0


def test_measure_counts_answers_that_differ_from_direct(
    chat_server: ThreadingHTTPServer, tmp_path: Path
) -> None:
    other = ThreadingHTTPServer(("127.0.0.1", 0), ChatStream)
    other.answer = [" green", " hills"]  # type: ignore[attr-defined]
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        targets = {
            "direct": Target(f"http://127.0.0.1:{chat_server.server_address[1]}/v1/x", {}),
            "gateway": Target(f"http://127.0.0.1:{other.server_address[1]}/v1/x", {}),
        }
        found, mismatched = asyncio.run(measure(targets, [("short", 2, 6)], 0))
    finally:
        other.shutdown()
        other.server_close()
    assert mismatched == {"gateway": 6}
    assert [lv.errors for lv in found] == [0, 0]
