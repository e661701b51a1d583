"""The tiny local model served by the real llama-cpp-python server: the OpenAI endpoints the
reroute and the gateway rely on, answering in readable words, the same way every time."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.local_model import LocalModelServer, LocalModelServerError, running_local_model
from tests.support.tiny_gguf import SENTENCES, write_tiny_gguf

WORDS = {w for s in SENTENCES for w in s.split()}


def ask(server: LocalModelServer, text: str, **extra: Any) -> dict[str, Any]:
    body = {"model": server.model, "temperature": 0,
            "messages": [{"role": "user", "content": text}], **extra}  # fmt: skip
    answer = httpx.post(server.base_url + "/chat/completions", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def stream(server: LocalModelServer, text: str) -> list[dict[str, Any]]:
    body = {"model": server.model, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": text}]}  # fmt: skip
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def is_sentence_end(text: str) -> bool:
    """The answer is the tail of one of the model's sentences: plain words ending in '.'."""
    words = text.replace(".", " .").split()
    return (
        bool(words)
        and words[-1] == "."
        and any(s.split()[-len(words) :] == words for s in SENTENCES)
    )


def test_the_model_file_is_small_and_the_same_every_time(tmp_path: Path) -> None:
    first = write_tiny_gguf(tmp_path / "a.gguf").read_bytes()
    second = write_tiny_gguf(tmp_path / "b.gguf").read_bytes()
    assert first[:4] == b"GGUF"
    assert first == second
    assert len(first) < 5_000_000


def test_models_lists_the_alias(local_model_server: LocalModelServer) -> None:
    doc = httpx.get(local_model_server.base_url + "/models", timeout=10).json()
    assert [m["id"] for m in doc["data"]] == ["tiny"]


def test_chat_answers_in_words_and_stops_by_itself(local_model_server: LocalModelServer) -> None:
    doc = ask(local_model_server, "Is the quarterly report ready?")
    choice = doc["choices"][0]
    assert doc["object"] == "chat.completion"
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    assert is_sentence_end(choice["message"]["content"]), choice["message"]["content"]
    assert choice["message"]["content"].isascii()


def test_chat_at_temperature_zero_is_deterministic(local_model_server: LocalModelServer) -> None:
    prompts = ["Summarise the meeting notes", "def add(a, b):\n    return a + b", "hello"]
    first = [ask(local_model_server, p)["choices"][0]["message"]["content"] for p in prompts]
    again = [ask(local_model_server, p)["choices"][0]["message"]["content"] for p in prompts]
    assert first == again


def test_different_prompts_get_different_answers(local_model_server: LocalModelServer) -> None:
    prompts = ["What is our revenue?", "Fix this bug please", "Translate to French: cat",
               "AKIAIOSFODNN7EXAMPLE is the key", "Write a poem about rivers"]  # fmt: skip
    answers = {ask(local_model_server, p)["choices"][0]["message"]["content"] for p in prompts}
    assert len(answers) >= 3, answers


def test_max_tokens_cuts_the_answer(local_model_server: LocalModelServer) -> None:
    doc = ask(local_model_server, "Is the quarterly report ready?", max_tokens=1)
    assert doc["usage"]["completion_tokens"] == 1
    assert doc["choices"][0]["finish_reason"] == "length"


def test_stream_gives_the_same_text_token_by_token(local_model_server: LocalModelServer) -> None:
    prompt = "Is the quarterly report ready?"
    chunks = stream(local_model_server, prompt)
    deltas = [c["choices"][0]["delta"].get("content") or "" for c in chunks]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len([d for d in deltas if d]) >= 2
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "".join(deltas) == ask(local_model_server, prompt)["choices"][0]["message"]["content"]


def test_multi_turn_history_and_content_parts_are_accepted(
    local_model_server: LocalModelServer,
) -> None:
    body = {"model": "tiny", "temperature": 0, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "a local model wrote this reply."},
        {"role": "user", "content": [{"type": "text", "text": "and now?"}]},
    ]}  # fmt: skip
    answer = httpx.post(local_model_server.base_url + "/chat/completions", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    text = answer.json()["choices"][0]["message"]["content"]
    assert is_sentence_end(text), text


def test_embeddings_give_one_vector_per_input(local_model_server: LocalModelServer) -> None:
    body = {"model": "tiny", "input": ["first text", "second text"]}
    doc = httpx.post(local_model_server.base_url + "/embeddings", json=body, timeout=60).json()
    vectors = [d["embedding"] for d in doc["data"]]
    assert len(vectors) == 2
    assert len(vectors[0]) == len(vectors[1]) == 128
    assert vectors[0] != vectors[1]


def test_answers_use_only_the_models_words(local_model_server: LocalModelServer) -> None:
    text = ask(local_model_server, "Tell me everything")["choices"][0]["message"]["content"]
    assert set(re.findall(r"[a-z]+|\.", text)) <= WORDS


def test_a_server_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with (
        pytest.raises(LocalModelServerError) as failed,
        running_local_model(tmp_path, model=broken, startup_timeout_s=30),
    ):
        pass
    assert "llama_cpp.server exited" in str(failed.value)
    assert "broken.gguf" in str(failed.value)


def test_concurrent_streams_each_run_to_their_end(local_model_server: LocalModelServer) -> None:
    async def one(client: httpx.AsyncClient, text: str) -> str | None:
        body = {"model": "tiny", "temperature": 0, "stream": True,
                "messages": [{"role": "user", "content": text}]}  # fmt: skip
        finish = None
        async with client.stream("POST", "/chat/completions", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    finish = json.loads(line[6:])["choices"][0]["finish_reason"] or finish
        return finish

    async def many() -> list[str | None]:
        async with httpx.AsyncClient(base_url=local_model_server.base_url, timeout=60) as c:
            return await asyncio.gather(*(one(c, f"question number {i}") for i in range(6)))

    assert asyncio.run(many()) == ["stop"] * 6


def test_a_forced_tool_call_gives_arguments_that_parse_as_json(
    local_model_server: LocalModelServer,
) -> None:
    params = {"type": "object", "required": ["city", "days"],
              "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}  # fmt: skip
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": params}}]
    choice = {"type": "function", "function": {"name": "get_weather"}}
    doc = ask(local_model_server, "Weather in Seoul?", tools=tools, tool_choice=choice)
    call = doc["choices"][0]["message"]["tool_calls"][0]["function"]
    assert doc["choices"][0]["finish_reason"] == "tool_calls"
    assert call["name"] == "get_weather"
    arguments = json.loads(call["arguments"])
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)
