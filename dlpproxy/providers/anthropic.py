"""Anthropic Messages (`POST /v1/messages`): `system`, content blocks, Anthropic's SSE events."""

from __future__ import annotations

import json
from typing import Any

from dlpproxy.providers import files
from dlpproxy.providers.base import Collector, Request, Response, StreamTranslator
from dlpproxy.providers.generic import walk_json
from dlpproxy.providers.json_api import JsonApiAdapter, add_base64_text
from dlpproxy.providers.jsonpath import JsonPath, render
from dlpproxy.providers.openai_format import (
    SSE_TYPE,
    add_tools,
    copy_params,
    delta_of,
    finish_of,
    function_tool,
    json_response,
    sse,
    text_of,
    tool_call_deltas,
    tool_calls_of,
    usage_of,
)

ROUTE = "/v1/messages"
# Messages API setting -> Chat Completions setting, for to_openai
SAMPLING = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop_sequences": "stop",
    "stream": "stream",
}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


class AnthropicAdapter(JsonApiAdapter):
    name = "anthropic"

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and req.route == ROUTE

    def _walk(self, doc: dict[str, Any], found: Collector, req: Request) -> None:
        walk_blocks_or_text(doc.get("system"), ("system",), found)
        messages = doc.get("messages")
        if not isinstance(messages, list):
            raise TypeError("'messages' is not a list")
        for i, message in enumerate(messages):
            walk_blocks_or_text(message.get("content"), ("messages", i, "content"), found)

    def to_openai(self, req: Request) -> dict[str, Any]:
        doc = self.parse(req)
        messages: list[dict[str, Any]] = []
        system = _plain_text(doc.get("system"))
        if system:
            messages.append({"role": "system", "content": system})
        for message in doc.get("messages") or []:
            messages.extend(_chat_messages(message))
        chat: dict[str, Any] = {"model": doc.get("model") or "", "messages": messages}
        copy_params(doc, SAMPLING, chat)
        tools = [
            function_tool(t.get("name"), t.get("description"), t.get("input_schema"))
            for t in doc.get("tools") or []
            if isinstance(t, dict) and t.get("name") and t.get("type") in (None, "custom")
        ]
        add_tools(chat, tools, _tool_choice(doc.get("tool_choice")))
        return chat

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response:
        return json_response(message_object(completion))

    def stream_translator(self, req: Request) -> StreamTranslator:
        return AnthropicStream()


def walk_blocks_or_text(content: object, path: JsonPath, found: Collector) -> None:
    """A string, or a list of content blocks (text, tool_result, document, tool_use)."""
    if not isinstance(content, list):
        found.add(content, path)
        return
    for j, block in enumerate(content):
        here = (*path, j)
        kind = block.get("type")
        if kind == "text":
            found.add(block.get("text"), (*here, "text"))
        elif kind == "tool_result":
            walk_blocks_or_text(block.get("content"), (*here, "content"), found)
        elif kind == "tool_use":
            walk_json(block.get("input"), (*here, "input"), found)
        elif kind == "document":
            _walk_document(block, here, found)
        elif kind in ("image", "search_result"):
            found.skip(render(here), f"{kind} block: not scanned")


def _walk_document(block: dict[str, Any], path: JsonPath, found: Collector) -> None:
    source = block.get("source") or {}
    media = str(source.get("media_type", ""))
    here = (*path, "source")
    if source.get("type") == "text":
        found.add(source.get("data"), (*here, "data"))
    elif source.get("type") == "content":
        walk_blocks_or_text(source.get("content"), (*here, "content"), found)
    elif source.get("type") == "base64" and media.startswith("text/"):
        add_base64_text(found, source.get("data"), (*here, "data"), media)
    elif source.get("type") == "base64":
        name = str(block.get("title") or "document")
        text, reason = files.text_of_data_url(f"data:{media};base64,{source.get('data', '')}", name)
        where = render((*here, "data"))
        if text is None:
            found.skip(where, reason)
        elif text.strip():
            found.add_place(text, files.EXTRACTED_PLACE, f"{where}:file={name}")
    else:
        found.skip(render(path), f"document source '{source.get('type')}': not scanned")


def _tool_choice(choice: object) -> str:
    """Anthropic's tool_choice -> auto|required|none or the name of the one tool to call."""
    if not isinstance(choice, dict):
        return "auto"
    kind = choice.get("type")
    if kind == "tool":
        return str(choice.get("name") or "auto")
    return {"any": "required", "none": "none"}.get(str(kind), "auto")


def _plain_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


def _chat_messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One Anthropic turn -> OpenAI messages (tool results become `tool` messages)."""
    role, content = message.get("role", "user"), message.get("content")
    if not isinstance(content, list):
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image" and (block.get("source") or {}).get("type") == "base64":
            src = block["source"]
            url = f"data:{src.get('media_type')};base64,{src.get('data', '')}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "tool_result":
            text = _plain_text(block.get("content"))
            out.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text}
            )
        elif kind == "tool_use":
            fn = {"name": block.get("name", ""), "arguments": json.dumps(block.get("input") or {})}
            calls.append({"id": block.get("id", ""), "type": "function", "function": fn})
    if parts or calls:
        turn: dict[str, Any] = {"role": role, "content": parts or None}
        if calls:
            turn["tool_calls"] = calls
        out.append(turn)
    return out


def message_object(completion: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic `message` with the completion's text and tool calls."""
    prompt_tokens, completion_tokens = usage_of(completion)
    content: list[dict[str, Any]] = [{"type": "text", "text": text_of(completion)}]
    for call_id, name, args in tool_calls_of(completion):
        content.append({"type": "tool_use", "id": call_id, "name": name, "input": args})
    return {
        "id": f"msg_{completion.get('id', 'dlp')}",
        "type": "message",
        "role": "assistant",
        "model": completion.get("model", ""),
        "content": content,
        "stop_reason": STOP_REASONS.get(finish_of(completion), "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
    }


class AnthropicStream:
    """Chunks -> message_start, content blocks (text deltas; tool_use blocks with input JSON
    deltas for streamed tool calls), block stops, message_delta, message_stop."""

    content_type = SSE_TYPE

    def __init__(self) -> None:
        self.started = False
        self.done = False
        self.output_tokens = 0
        self.block = 0  # index of the open content block
        self.kind = "text"  # its type
        self.tools: dict[int, int] = {}  # tool call index in the chunks -> its block index

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out = b""
        if not self.started:
            self.started = True
            message = message_object(chunk) | {"content": [], "stop_reason": None}
            out += sse({"type": "message_start", "message": message}, "message_start")
            out += self._open(0, {"type": "text", "text": ""})
            out += sse({"type": "ping"}, "ping")
        text, finish = delta_of(chunk)
        if text:
            if self.kind != "text":
                out += self._stop() + self._open(self.block + 1, {"type": "text", "text": ""})
            self.output_tokens += 1
            out += self._delta({"type": "text_delta", "text": text})
        for call in tool_call_deltas(chunk):
            out += self._tool(call)
        if finish and not self.done:
            out += self._close(STOP_REASONS.get(finish, "end_turn"))
        return out

    def _tool(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = int(call.get("index") or 0)
        fn = call.get("function") or {}
        if index not in self.tools:
            block = {"type": "tool_use", "id": str(call.get("id") or f"toolu_{index}"),
                     "name": str(fn.get("name") or ""), "input": {}}  # fmt: skip
            out += self._stop() + self._open(self.block + 1, block)
            self.tools[index] = self.block
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments and self.tools[index] == self.block:
            out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def _open(self, index: int, block: dict[str, Any]) -> bytes:
        self.block, self.kind = index, str(block["type"])
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return sse(start, "content_block_start")

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self.block, "delta": delta}
        return sse(event, "content_block_delta")

    def _stop(self) -> bytes:
        return sse({"type": "content_block_stop", "index": self.block}, "content_block_stop")

    def _close(self, stop_reason: str) -> bytes:
        self.done = True
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        usage = {"output_tokens": self.output_tokens}
        return (
            self._stop()
            + sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta")
            + sse({"type": "message_stop"}, "message_stop")
        )

    def finish(self) -> bytes:
        if not self.started:
            self.feed({})
        return b"" if self.done else self._close("end_turn")
