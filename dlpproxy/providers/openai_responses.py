"""OpenAI Responses API (`POST /v1/responses`): `instructions`, and `input` as text or items."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from dlpproxy.providers.base import Collector, Request, Response, StreamTranslator
from dlpproxy.providers.json_api import JsonApiAdapter
from dlpproxy.providers.openai_chat import walk_content_parts
from dlpproxy.providers.openai_format import (
    SSE_TYPE,
    StreamedToolCalls,
    add_tools,
    copy_params,
    delta_of,
    finish_of,
    function_tool,
    json_response,
    sse,
    text_of,
    tool_calls_of,
    usage_of,
)

# api.openai.com and compatible hosts use /v1/responses; Azure /openai/v1/responses and
# /openai/responses?api-version=...
ROUTE = re.compile(r"(?:/openai)?(?:/v1)?/responses")
# Responses setting -> Chat Completions setting, for to_openai
SAMPLING = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_output_tokens": "max_tokens",
    "stream": "stream",
}


class OpenAIResponsesAdapter(JsonApiAdapter):
    name = "openai_responses"

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and ROUTE.fullmatch(req.route) is not None

    def _walk(self, doc: dict[str, Any], found: Collector, req: Request) -> None:
        found.add(doc.get("instructions"), ("instructions",))
        if "input" not in doc:
            raise KeyError("no 'input'")
        items = doc.get("input")
        if not isinstance(items, list):
            found.add(items, ("input",))
            return
        for i, item in enumerate(items):
            kind = item.get("type", "message")
            if kind == "message" or "role" in item:
                content = item.get("content")
                if isinstance(content, list):
                    walk_content_parts(content, ("input", i, "content"), found)
                else:
                    found.add(content, ("input", i, "content"))
            elif kind == "function_call_output":
                found.add(item.get("output"), ("input", i, "output"))
            elif kind == "function_call":
                found.add(item.get("arguments"), ("input", i, "arguments"))

    def to_openai(self, req: Request) -> dict[str, Any]:
        doc = self.parse(req)
        messages: list[dict[str, Any]] = []
        if isinstance(doc.get("instructions"), str):
            messages.append({"role": "system", "content": doc["instructions"]})
        items = doc.get("input")
        if isinstance(items, str):
            messages.append({"role": "user", "content": items})
        for item in items if isinstance(items, list) else []:
            messages.append(_chat_message(item))
        chat: dict[str, Any] = {"model": doc.get("model") or "", "messages": messages}
        copy_params(doc, SAMPLING, chat)
        # function tools carry over; hosted tools (web search, file search...) cannot run locally
        tools = [
            function_tool(t.get("name"), t.get("description"), t.get("parameters"))
            for t in doc.get("tools") or []
            if isinstance(t, dict) and t.get("type") == "function" and t.get("name")
        ]
        choice = doc.get("tool_choice")
        if isinstance(choice, dict):
            choice = choice.get("name") if choice.get("type") == "function" else "auto"
        add_tools(chat, tools, choice or "auto")
        return chat

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response:
        return json_response(response_object(completion, "completed"))

    def stream_translator(self, req: Request) -> StreamTranslator:
        return ResponsesStream()


def _chat_message(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type", "message")
    if kind == "function_call_output":
        return {
            "role": "tool",
            "tool_call_id": item.get("call_id", ""),
            "content": item.get("output", ""),
        }
    if kind == "function_call":
        call = {"name": item.get("name", ""), "arguments": item.get("arguments", "{}")}
        tool_call = {"id": item.get("call_id", ""), "type": "function", "function": call}
        return {"role": "assistant", "content": None, "tool_calls": [tool_call]}
    content = item.get("content")
    if isinstance(content, list):
        content = [_chat_part(p) for p in content]
    return {"role": item.get("role", "user"), "content": content}


def _chat_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "input_image":
        return {"type": "image_url", "image_url": {"url": part.get("image_url", "")}}
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text", "")}
    return dict(part)


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
    )
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def response_object(completion: dict[str, Any], status: str) -> dict[str, Any]:
    """A Responses API `response` object holding the completion's text and tool calls."""
    base_id = str(completion.get("id", "dlp"))
    prompt_tokens, completion_tokens = usage_of(completion)
    output = (
        [_message_item(f"msg_{base_id}", text_of(completion), status)]
        if status != "in_progress"
        else []
    )
    for call_id, name, args in tool_calls_of(completion) if status == "completed" else []:
        output.append(
            {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": name,
             "arguments": json.dumps(args), "status": "completed"}
        )  # fmt: skip
    incomplete = status == "completed" and finish_of(completion) == "length"
    return {
        "id": f"resp_{base_id}",
        "object": "response",
        "created_at": completion.get("created", int(time.time())),
        "status": "incomplete" if incomplete else status,
        "model": completion.get("model", ""),
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ResponsesStream:
    """Chunks -> the Responses event sequence: created, item/part added, text deltas, done."""

    content_type = SSE_TYPE

    def __init__(self) -> None:
        self.sequence = 0
        self.text = ""
        self.head: dict[str, Any] | None = None
        self.done = False
        self.calls = StreamedToolCalls()
        self.finish_reason = "stop"

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse(data, event=kind)

    def _where(self) -> dict[str, Any]:
        assert self.head is not None
        return {"item_id": f"msg_{self.head['id']}", "output_index": 0, "content_index": 0}

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out = b""
        if self.head is None:
            self.head = {
                "id": chunk.get("id", "dlp"),
                "created": chunk.get("created"),
                "model": chunk.get("model", ""),
            }
            started = response_object(self.head, "in_progress")
            item = _message_item(f"msg_{self.head['id']}", "", "in_progress")
            part = {"type": "output_text", "text": "", "annotations": []}
            out += self._event("response.created", response=started)
            out += self._event("response.in_progress", response=started)
            out += self._event("response.output_item.added", output_index=0, item=item)
            out += self._event("response.content_part.added", part=part, **self._where())
        text, finish = delta_of(chunk)
        if text:
            self.text += text
            out += self._event(
                "response.output_text.delta", delta=text, logprobs=[], **self._where()
            )
        self.calls.add(chunk)
        if finish and not self.done:
            self.finish_reason = str(finish)
            out += self._close()
        return out

    def _function_calls(self) -> bytes:
        """Each assembled tool call as a function_call output item with its argument events."""
        out = b""
        for n, call in enumerate(self.calls.tool_calls()):
            fn, arguments = call["function"], call["function"]["arguments"]
            item = {
                "type": "function_call", "id": f"fc_{call['id']}", "call_id": call["id"],
                "name": fn["name"], "arguments": "", "status": "in_progress",
            }  # fmt: skip
            where = {"item_id": item["id"], "output_index": n + 1}
            out += self._event("response.output_item.added", output_index=n + 1, item=item)
            out += self._event("response.function_call_arguments.delta", delta=arguments, **where)
            out += self._event(
                "response.function_call_arguments.done", arguments=arguments, **where
            )
            done = item | {"arguments": arguments, "status": "completed"}
            out += self._event("response.output_item.done", output_index=n + 1, item=done)
        return out

    def _close(self) -> bytes:
        assert self.head is not None
        self.done = True
        where = self._where()
        part = {"type": "output_text", "text": self.text, "annotations": []}
        item = _message_item(where["item_id"], self.text, "completed")
        message: dict[str, Any] = {"content": self.text}
        if self.calls:
            message["tool_calls"] = self.calls.tool_calls()
        finished = self.head | {
            "choices": [{"message": message, "finish_reason": self.finish_reason}]
        }
        return (
            self._event("response.output_text.done", text=self.text, logprobs=[], **where)
            + self._event("response.content_part.done", part=part, **where)
            + self._event("response.output_item.done", output_index=0, item=item)
            + self._function_calls()
            + self._event("response.completed", response=response_object(finished, "completed"))
        )

    def finish(self) -> bytes:
        if self.head is None:
            self.feed({})
        return b"" if self.done else self._close()
