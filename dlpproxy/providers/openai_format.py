"""OpenAI Chat Completions objects that every adapter translates from, and SSE framing.

A block answer is built as a one-choice chat completion (or its chunk stream) and translated by
the adapter like any answer from a local model, so both paths share one translation.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dlpproxy.providers.base import INCIDENT_HEADER, Response

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


def completion(
    text: str, model: str | None, completion_id: str, finish_reason: str = "stop"
) -> dict[str, Any]:
    """A complete `chat.completion` with one assistant message."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or "dlpproxy",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def chunks_of(done: dict[str, Any]) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` stream that an upstream would have sent for `done`."""
    base = {k: done[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    choice = done["choices"][0]

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return base | {
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        }

    return [
        chunk({"role": "assistant", "content": ""}, None),
        chunk({"content": choice["message"].get("content") or ""}, None),
        chunk({}, choice.get("finish_reason") or "stop"),
    ]


def message_of(done: dict[str, Any]) -> dict[str, Any]:
    choices = done.get("choices") or [{}]
    message: dict[str, Any] = choices[0].get("message") or {}
    return message


def text_of(done: dict[str, Any]) -> str:
    content = message_of(done).get("content")
    return content if isinstance(content, str) else ""


def finish_of(done: dict[str, Any]) -> str:
    choices = done.get("choices") or [{}]
    return str(choices[0].get("finish_reason") or "stop")


def usage_of(done: dict[str, Any]) -> tuple[int, int]:
    usage = done.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def tool_calls_of(done: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, function name, parsed arguments) for each tool call of the first choice."""
    calls = []
    for call in message_of(done).get("tool_calls") or []:
        fn = call.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except json.JSONDecodeError:
            args = {"arguments": fn.get("arguments")}
        calls.append((str(call.get("id", "")), str(fn.get("name", "")), args))
    return calls


def delta_of(chunk: dict[str, Any]) -> tuple[str, str | None]:
    """The text a chunk adds and its finish reason (None while the answer goes on)."""
    choices = chunk.get("choices") or []
    if not choices:
        return "", None
    content = (choices[0].get("delta") or {}).get("content")
    return (content if isinstance(content, str) else ""), choices[0].get("finish_reason")


def tool_call_deltas(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """The streamed tool-call pieces of a chunk: {index, id?, function: {name?, arguments?}}."""
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return []
    calls = (choices[0].get("delta") or {}).get("tool_calls") or []
    return [c for c in calls if isinstance(c, dict)]


class StreamedToolCalls:
    """Tool calls a chunk stream sends in pieces (an index, then id, name and argument
    fragments), assembled into Chat Completions `tool_calls` for formats that send them whole."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        for call in tool_call_deltas(chunk):
            index = int(call.get("index") or 0)
            held = self._calls.get(index)
            if held is None:
                call_id = str(call.get("id") or f"call_{len(self._calls) + 1}")
                held = self._calls[index] = {"id": call_id, "name": "", "arguments": ""}
            fn = call.get("function") or {}
            if fn.get("name"):
                held["name"] = str(fn["name"])
            held["arguments"] += str(fn.get("arguments") or "")

    def __bool__(self) -> bool:
        return bool(self._calls)

    def tool_calls(self) -> list[dict[str, Any]]:
        return [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for _, c in sorted(self._calls.items())
        ]  # fmt: skip


def copy_params(source: dict[str, Any], names: dict[str, str], chat: dict[str, Any]) -> None:
    """Copy sampling settings present in `source` into `chat` under OpenAI's names."""
    for theirs, ours in names.items():
        if source.get(theirs) not in (None, [], ""):
            chat[ours] = source[theirs]


def function_tool(name: object, description: object, parameters: object) -> dict[str, Any]:
    """One Chat Completions function tool (the shape every other format's tools map onto)."""
    function: dict[str, Any] = {"name": str(name or "")}
    if isinstance(description, str) and description:
        function["description"] = description
    if isinstance(parameters, dict):
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def add_tools(chat: dict[str, Any], tools: list[dict[str, Any]], choice: object) -> None:
    """Put translated tools (and the tool choice: auto|required|none|a function name) on `chat`."""
    if not tools:
        return
    chat["tools"] = tools
    if choice in ("auto", "required", "none"):
        chat["tool_choice"] = choice
    elif isinstance(choice, str) and choice:
        chat["tool_choice"] = {"type": "function", "function": {"name": choice}}


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; `data` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def json_response(doc: Any, status: int = 200) -> Response:
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return Response(status, (("content-type", JSON_TYPE),), body)


def blocked_error(message: str, incident_id: str) -> Response:
    """The one provider-neutral refusal: 403 with an OpenAI-style error object (most clients and
    web UIs show `error.message`) and the incident header."""
    error = {
        "message": message,
        "type": "dlpproxy_blocked",
        "param": None,
        "code": "blocked_by_dlp",
        "incident_id": incident_id,
    }
    answer = json_response({"error": error}, status=403)
    return Response(403, (*answer.headers, (INCIDENT_HEADER, incident_id)), answer.body)
