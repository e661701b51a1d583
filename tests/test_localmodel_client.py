"""The local model client: against the real llama.cpp server for answers, and against real
loopback servers that misbehave on purpose (nothing listening, never answering, malformed JSON,
streams cut midway, HTTP errors) for every failure kind and the circuit breaker. No mocks."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dlpproxy.localmodel import (
    LocalModel,
    LocalModelConfig,
    LocalModelConfigError,
    LocalModelError,
    LocalModelPool,
    LocalModels,
    parse_local_models,
)
from tests.support.local_model import LocalModelServer, free_port

QUESTION = {"messages": [{"role": "user", "content": "Is the quarterly report ready?"}],
            "temperature": 0}  # fmt: skip


def run[T](coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def model(base_url: str, **settings: Any) -> LocalModel:
    fast = {"connect_timeout_s": 2.0, "timeout_s": 5.0, "first_token_timeout_s": 5.0,
            "idle_timeout_s": 5.0, **settings}  # fmt: skip
    return LocalModel(LocalModelConfig(name="company", base_url=base_url, model="tiny", **fast))


async def collect(
    local: LocalModel, body: dict[str, Any], into: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The chunks of a stream (kept in `into` as they come, for streams that fail later)."""
    received = [] if into is None else into
    try:
        async for c in local.chat_stream(body):
            received.append(c)
    finally:
        await local.aclose()
    return received


async def once(local: LocalModel, call: str, *args: Any) -> Any:
    try:
        return await getattr(local, call)(*args)
    finally:
        await local.aclose()


def failure(awaitable: Awaitable[Any]) -> LocalModelError:
    with pytest.raises(LocalModelError) as caught:
        run(awaitable)
    return caught.value


# -- a misbehaving OpenAI-compatible server: /<scenario>/v1/...


def sse(*events: Any) -> bytes:
    return b"".join(
        f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
    )


def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "tiny",
            "choices": [choice]}  # fmt: skip


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.calls: dict[str, int] = {}
        self.headers_seen: list[dict[str, str]] = []
        self.failing = True  # the "flaky" scenario fails while this is set
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{scenario}/v1"


class ScriptedHandler(BaseHTTPRequestHandler):
    server: Scripted
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        scenario = self.path.split("/")[1]
        self.server.calls[scenario] = self.server.calls.get(scenario, 0) + 1
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        if scenario == "flaky":
            scenario = "error500" if self.server.failing else "ok"
        getattr(self, "scenario_" + scenario.replace("-", "_"))()

    def whole(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def stream(self, body: bytes, end: bool = True, then_wait_s: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
        self.wfile.flush()
        time.sleep(then_wait_s)
        if end:
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True  # not ended: the connection drops mid-body

    def scenario_ok(self) -> None:
        answer = {"object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "fine"},
             "finish_reason": "stop"}]}  # fmt: skip
        self.whole(200, json.dumps(answer).encode())

    def scenario_malformed(self) -> None:
        self.whole(200, b'{"object": "chat.completion", "choices": [')

    def scenario_not_chat(self) -> None:
        self.whole(200, json.dumps({"object": "list", "data": []}).encode())

    def scenario_error500(self) -> None:
        self.whole(500, json.dumps({"error": {"message": "model crashed"}}).encode())

    def scenario_error400(self) -> None:
        self.whole(400, json.dumps({"error": {"message": "context too long"}}).encode())

    def scenario_html(self) -> None:
        self.whole(502, b"<html>Bad Gateway</html>", "text/html")

    def scenario_cut(self) -> None:
        self.stream(sse(chunk("one"), chunk(" two")), end=False)

    def scenario_cut_json(self) -> None:
        self.stream(sse(chunk("one")) + b'data: {"id": "c1", "choi\n\n')

    def scenario_no_done(self) -> None:
        self.stream(sse(chunk("one")))

    def scenario_finished_no_done(self) -> None:
        self.stream(sse(chunk("one"), chunk("", "stop")))

    def scenario_error_event(self) -> None:
        self.stream(sse(chunk("one"), {"error": {"message": "out of memory", "code": 500}}))

    def scenario_stall(self) -> None:
        self.stream(sse(chunk("one")), then_wait_s=1.5)

    def scenario_empty(self) -> None:
        self.stream(sse("[DONE]"))

    def scenario_split_data(self) -> None:  # one event's JSON over two data: lines
        first, second = json.dumps(chunk("a", "stop")).split(", ", 1)
        self.stream(f"data: {first},\ndata: {second}\n\ndata: [DONE]\n\n".encode())

    def scenario_done_early(self) -> None:
        self.stream(sse(chunk("one"), "[DONE]"))

    def scenario_ping(self) -> None:
        body = b": ping\n\nevent: message\n" + sse(chunk("a"), chunk("b", "stop"), "[DONE]")
        self.stream(body)

    def scenario_json_not_sse(self) -> None:
        self.scenario_ok()

    def scenario_auth(self) -> None:
        if self.headers.get("authorization") != "Bearer s3cret":
            self.whole(401, json.dumps({"error": {"message": "bad key"}}).encode())
        else:
            self.scenario_ok()


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


# -- the real local model


def test_chat_returns_the_real_models_completion(local_model_server: LocalModelServer) -> None:
    local = model(local_model_server.base_url)
    doc = run(once(local, "chat", {**QUESTION, "model": "gpt-4o", "stream": True}))
    assert doc["object"] == "chat.completion"
    assert doc["model"] == "tiny"
    assert doc["choices"][0]["finish_reason"] == "stop"
    assert doc["choices"][0]["message"]["content"].strip().endswith(".")
    assert local.breaker.state == "closed"


def test_chat_is_deterministic_at_temperature_zero(local_model_server: LocalModelServer) -> None:
    answers = [run(once(model(local_model_server.base_url), "chat", QUESTION)) for _ in range(2)]
    texts = [a["choices"][0]["message"]["content"] for a in answers]
    assert texts[0] == texts[1]


def test_one_client_serves_successive_event_loops(local_model_server: LocalModelServer) -> None:
    local = model(local_model_server.base_url)  # never closed between the runs, on purpose
    first = run(local.chat(QUESTION))
    second = run(local.chat(QUESTION))
    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    assert local.breaker.failures == 0


def test_stream_yields_chunks_that_add_up_to_the_answer(
    local_model_server: LocalModelServer,
) -> None:
    chunks = run(collect(model(local_model_server.base_url), QUESTION))
    whole = run(once(model(local_model_server.base_url), "chat", QUESTION))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len(chunks) >= 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert text == whole["choices"][0]["message"]["content"]


def test_models_and_embeddings_pass_through(local_model_server: LocalModelServer) -> None:
    local = model(local_model_server.base_url)
    listed = run(once(local, "models"))
    vectors = run(once(local, "embeddings", {"model": "anything", "input": ["a", "b"]}))
    assert [m["id"] for m in listed["data"]] == ["tiny"]
    assert [len(d["embedding"]) for d in vectors["data"]] == [128, 128]


def test_health_is_ok_cached_and_renewed_on_force(local_model_server: LocalModelServer) -> None:
    local = model(local_model_server.base_url, health_ttl_s=60.0)
    assert local.status() == "unknown (not checked yet)"

    async def checks() -> tuple[Any, Any, Any]:
        first = await local.health()
        cached = await local.health()
        forced = await local.health(force=True)
        await local.aclose()
        return first, cached, forced

    first, cached, forced = run(checks())
    assert first.ok and first.detail == "serving tiny"
    assert first.latency_ms > 0
    assert cached is first
    assert forced is not first and forced.checked_at >= first.checked_at
    assert local.status() == "ok"


def test_a_prompt_longer_than_the_context_is_an_http_error_that_keeps_the_circuit_closed(
    local_model_server: LocalModelServer,
) -> None:
    local = model(local_model_server.base_url, breaker_failures=1)
    body = {"messages": [{"role": "user", "content": "x " * 9000}]}
    error = failure(once(local, "chat", body))
    assert (error.kind, error.status) == ("http_error", 400)
    assert "context" in str(error)
    assert local.breaker.state == "closed"


# -- failures, one kind each


def test_nothing_listening_is_unavailable() -> None:
    port = free_port()
    error = failure(once(model(f"http://127.0.0.1:{port}/v1"), "chat", QUESTION))
    assert error.kind == "unavailable"
    assert f"127.0.0.1:{port}" in str(error)


def test_nothing_listening_is_unavailable_for_a_stream_too() -> None:
    error = failure(collect(model(f"http://127.0.0.1:{free_port()}/v1"), QUESTION))
    assert error.kind == "unavailable"


def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    local = model(f"http://127.0.0.1:{silent_port}/v1", timeout_s=0.3)
    started = time.monotonic()
    error = failure(once(local, "chat", QUESTION))
    assert error.kind == "timeout"
    assert "0.3 s" in str(error)
    assert time.monotonic() - started < 3


def test_a_stream_without_a_first_chunk_times_out(silent_port: int) -> None:
    local = model(f"http://127.0.0.1:{silent_port}/v1", first_token_timeout_s=0.3)
    error = failure(collect(local, QUESTION))
    assert error.kind == "timeout"
    assert "first chunk" in str(error)


def test_a_stream_that_stalls_midway_times_out(scripted: Scripted) -> None:
    local = model(scripted.url("stall"), idle_timeout_s=0.3)
    received: list[dict[str, Any]] = []
    error = failure(collect(local, QUESTION, received))
    assert error.kind == "timeout"
    assert "next chunk" in str(error)
    assert [c["choices"][0]["delta"]["content"] for c in received] == ["one"]


@pytest.mark.parametrize(
    ("scenario", "kind", "status", "words"),
    [
        ("malformed", "bad_response", None, "malformed JSON"),
        ("not-chat", "bad_response", None, "not a chat completion"),
        ("error500", "http_error", 500, "model crashed"),
        ("error400", "http_error", 400, "context too long"),
        ("html", "http_error", 502, "Bad Gateway"),
    ],
)
def test_whole_answers_that_are_not_completions(
    scripted: Scripted, scenario: str, kind: str, status: int | None, words: str
) -> None:
    error = failure(once(model(scripted.url(scenario)), "chat", QUESTION))
    assert (error.kind, error.status) == (kind, status)
    assert words in str(error)


@pytest.mark.parametrize(
    ("scenario", "kind", "words", "before"),
    [
        ("cut", "bad_response", "broke the answer off", 2),
        ("cut-json", "bad_response", "malformed JSON", 1),
        ("no-done", "bad_response", "ended before the answer finished", 1),
        ("done-early", "bad_response", "ended before the answer finished", 1),
        ("empty", "bad_response", "ended before the answer finished", 0),
        ("error-event", "http_error", "out of memory", 1),
        ("json-not-sse", "bad_response", "expected an SSE stream", 0),
        ("error500", "http_error", "model crashed", 0),
    ],
)
def test_broken_streams_raise_after_the_chunks_that_came(
    scripted: Scripted, scenario: str, kind: str, words: str, before: int
) -> None:
    local = model(scripted.url(scenario))
    received: list[dict[str, Any]] = []
    error = failure(collect(local, QUESTION, received))
    assert error.kind == kind
    assert words in str(error)
    assert len(received) == before


def test_stream_skips_comments_and_event_names(scripted: Scripted) -> None:
    pinged = run(collect(model(scripted.url("ping")), QUESTION))
    assert [c["choices"][0]["delta"]["content"] for c in pinged] == ["a", "b"]


def test_stream_joins_the_data_lines_of_one_event(scripted: Scripted) -> None:
    chunks = run(collect(model(scripted.url("split-data")), QUESTION))
    assert chunks == [chunk("a", "stop")]


def test_a_finished_stream_may_end_without_done(scripted: Scripted) -> None:
    finished = run(collect(model(scripted.url("finished-no-done")), QUESTION))
    assert [c["choices"][0]["finish_reason"] for c in finished] == [None, "stop"]


def test_the_api_key_goes_as_a_bearer_token(scripted: Scripted) -> None:
    config = parse_local_models(
        {"company": {"base_url": scripted.url("auth"), "model": "tiny", "api_key_env": "K"}},
        environ={"K": "s3cret"},
    )["company"]
    assert "s3cret" not in repr(config)
    assert run(once(LocalModel(config), "chat", QUESTION))["choices"][0]["message"]["content"]
    error = failure(once(model(scripted.url("auth")), "chat", QUESTION))
    assert error.status == 401


def test_the_model_name_and_stream_flag_are_forced(scripted: Scripted) -> None:
    sent: list[dict[str, Any]] = []

    class Recorder(ThreadingHTTPServer):
        pass

    class Handler(ScriptedHandler):
        def do_POST(self) -> None:
            sent.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.scenario_ok()

    server = Recorder(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        body = {**QUESTION, "model": "gpt-4o", "stream": True, "stream_options": {}}
        run(once(model(url), "chat", body))
    finally:
        server.shutdown()
        server.server_close()
    assert sent[0]["model"] == "tiny"
    assert sent[0]["stream"] is False
    assert "stream_options" not in sent[0]
    assert body["model"] == "gpt-4o"  # the caller's body is left alone


# -- the circuit breaker


def test_the_circuit_opens_after_n_failures_and_then_stays_off_the_network(
    scripted: Scripted,
) -> None:
    scripted.calls.pop("error500", None)
    local = model(scripted.url("error500"), breaker_failures=2, breaker_reset_s=60.0)

    async def calls() -> list[LocalModelError]:
        errors = []
        for _ in range(4):
            try:
                await local.chat(QUESTION)
            except LocalModelError as exc:
                errors.append(exc)
        await local.aclose()
        return errors

    errors = run(calls())
    assert [e.kind for e in errors] == ["http_error", "http_error", "circuit_open", "circuit_open"]
    assert scripted.calls["error500"] == 2
    assert "model crashed" in str(errors[2])
    assert local.breaker.state == "open"
    assert local.status().startswith("circuit open")


def test_half_open_lets_one_trial_through_and_its_outcome_decides(scripted: Scripted) -> None:
    scripted.calls.pop("flaky", None)
    scripted.failing = True
    local = model(scripted.url("flaky"), breaker_failures=1, breaker_reset_s=0.2)

    async def kinds() -> list[str]:
        result = []
        for step in ("fail", "refused", "wait", "trial fails", "refused", "wait", "trial ok", "ok"):
            if step == "wait":
                await asyncio.sleep(0.25)
                continue
            scripted.failing = step != "trial ok" and step != "ok"
            try:
                await local.chat(QUESTION)
                result.append("ok")
            except LocalModelError as exc:
                result.append(exc.kind)
        await local.aclose()
        return result

    assert run(kinds()) == ["http_error", "circuit_open", "http_error", "circuit_open", "ok", "ok"]
    assert scripted.calls["flaky"] == 4
    assert local.breaker.state == "closed"


def test_half_open_admits_only_one_call_at_a_time(scripted: Scripted) -> None:
    local = model(scripted.url("stall"), breaker_failures=1, breaker_reset_s=0.1)
    local.breaker.failure("down")
    time.sleep(0.15)
    assert local.breaker.state == "half_open"
    assert local.breaker.allow() is True  # the trial
    error = failure(once(local, "chat", QUESTION))
    assert error.kind == "circuit_open"


def test_a_stream_failure_counts_toward_the_circuit(scripted: Scripted) -> None:
    local = model(scripted.url("cut"), breaker_failures=1, breaker_reset_s=60.0)
    first = failure(collect(local, QUESTION))
    second = failure(collect(local, QUESTION))
    assert (first.kind, second.kind) == ("bad_response", "circuit_open")


# -- the registry and the configuration


def test_registry_reports_each_models_state(
    local_model_server: LocalModelServer, scripted: Scripted
) -> None:
    configs = parse_local_models({
        "company": {"base_url": local_model_server.base_url, "model": "tiny"},
        "spare": {"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "x",
                  "connect_timeout_s": 1},
    })  # fmt: skip
    models = LocalModels(configs)

    async def check() -> dict[str, Any]:
        health = await models.check()
        await models.aclose()
        return health

    health = run(check())
    assert models.names() == ("company", "spare")
    assert "spare" in models and len(models) == 2
    assert health["company"].ok and not health["spare"].ok
    assert "unavailable" in health["spare"].detail
    status = models.status()
    assert status["company"] == "ok"
    assert status["spare"].startswith("down: unavailable")
    with pytest.raises(LocalModelConfigError, match="unknown local model 'other'"):
        models.get("other")


def test_config_defaults_everything_but_base_url_and_model() -> None:
    config = parse_local_models({"m": {"base_url": "http://gpu:8000/v1/", "model": "qwen"}})["m"]
    assert config == LocalModelConfig(name="m", base_url="http://gpu:8000/v1", model="qwen")
    assert config.url("chat/completions") == "http://gpu:8000/v1/chat/completions"
    assert config.health_path == "/models" and config.breaker_failures == 3


def test_config_reads_every_setting() -> None:
    doc = {"m": {"base_url": "https://llm.corp/v1", "model": "llama3", "timeout_s": 30,
                 "connect_timeout_s": 1.5, "first_token_timeout_s": 10, "idle_timeout_s": 4,
                 "max_connections": 8, "health_path": "/health", "health_ttl_s": 2,
                 "breaker_failures": 5, "breaker_reset_s": 12}}  # fmt: skip
    config = parse_local_models(doc)["m"]
    assert (config.timeout_s, config.connect_timeout_s, config.max_connections) == (30, 1.5, 8)
    assert (config.health_path, config.breaker_failures, config.breaker_reset_s) == (
        "/health",
        5,
        12,
    )


GOOD = {"base_url": "http://h/v1", "model": "x"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"model": "x"}, "local_models.m.base_url: required"),
        ({"base_url": "http://h/v1"}, "local_models.m.model: required"),
        ({**GOOD, "base_url": "ftp://h/v1"}, "m.base_url: expected an http(s) URL"),
        ({**GOOD, "base_url": "http://h:99999/v1"}, "m.base_url: Port out of range"),
        ({**GOOD, "timeout_s": "soon"}, "m.timeout_s: expected a positive number"),
        ({**GOOD, "timeout_s": 0}, "local_models.m.timeout_s"),
        ({**GOOD, "max_connections": 2.5}, "m.max_connections: expected a positive whole"),
        ({**GOOD, "breaker_failures": True}, "local_models.m.breaker_failures"),
        ({**GOOD, "health_path": "models"}, "local_models.m.health_path"),
        ({**GOOD, "timeout": 3}, "unknown setting 'timeout'"),
        ({**GOOD, "api_key": "sk-1"}, "keys do not belong in the policy file"),
        ({**GOOD, "api_key_env": "NOPE_UNSET"}, "'NOPE_UNSET' is not set"),
        ("http://h/v1", "local_models.m: expected settings"),
    ],
)
def test_bad_config_names_the_key(entry: Any, message: str) -> None:
    with pytest.raises(LocalModelConfigError) as caught:
        parse_local_models({"m": entry}, environ={})
    assert message in str(caught.value)


def test_config_section_must_be_a_mapping() -> None:
    assert parse_local_models(None) == {}
    with pytest.raises(LocalModelConfigError) as caught:
        parse_local_models(["a"], where="policy.yaml: local_models")  # type: ignore[arg-type]
    assert str(caught.value).startswith("policy.yaml: local_models: expected a mapping")


def test_pool_keeps_clients_while_the_configuration_is_equal_and_renews_them_on_change() -> None:
    first = {"a": LocalModelConfig(name="a", base_url="http://127.0.0.1:9/v1", model="m")}
    pool = LocalModelPool()
    models = pool.current(first)
    assert pool.current(dict(first)) is models
    changed = {"a": LocalModelConfig(name="a", base_url="http://127.0.0.1:10/v1", model="m")}
    renewed = pool.current(changed)
    assert renewed is not models and renewed.get("a").config.base_url.endswith(":10/v1")
    assert pool.current({}).names() == ()
