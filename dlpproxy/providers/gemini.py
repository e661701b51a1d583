"""Google Gemini `models/{model}:generateContent` and `:streamGenerateContent` (API and Vertex).

A streamed answer is SSE when the client asked `alt=sse` (what the SDKs do), otherwise the
REST default: one JSON array whose elements arrive one by one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dlpproxy.providers import files
from dlpproxy.providers.base import Collector, Request, Response, StreamTranslator
from dlpproxy.providers.generic import walk_json
from dlpproxy.providers.json_api import JsonApiAdapter, add_base64_text
from dlpproxy.providers.jsonpath import JsonPath, render
from dlpproxy.providers.openai_format import (
    JSON_TYPE,
    SSE_TYPE,
    StreamedToolCalls,
    add_tools,
    copy_params,
    delta_of,
    finish_of,
    function_tool,
    json_response,
    text_of,
    tool_calls_of,
    usage_of,
)

ROUTE = re.compile(
    r"/(?:v1|v1beta|v1alpha)/(?:.*/)?(?:models|tunedModels)/([^/:]+)"
    r":(?:generate|(stream)Generate)Content"
)
# generationConfig setting -> Chat Completions setting, for to_openai
SAMPLING = {
    "temperature": "temperature",
    "topP": "top_p",
    "maxOutputTokens": "max_tokens",
    "stopSequences": "stop",
}
FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}


class GeminiAdapter(JsonApiAdapter):
    name = "gemini"

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and ROUTE.fullmatch(req.route) is not None

    def _model(self, doc: dict[str, Any], req: Request) -> str | None:
        found = ROUTE.fullmatch(req.route)
        return found.group(1) if found else None

    def _stream(self, doc: dict[str, Any], req: Request) -> bool:
        found = ROUTE.fullmatch(req.route)
        return bool(found and found.group(2))

    def _walk(self, doc: dict[str, Any], found: Collector, req: Request) -> None:
        for key in ("systemInstruction", "system_instruction"):
            if isinstance(doc.get(key), dict):
                walk_parts(doc[key].get("parts"), (key, "parts"), found)
        contents = doc.get("contents")
        if not isinstance(contents, list):
            raise TypeError("'contents' is not a list")
        for i, content in enumerate(contents):
            walk_parts(content.get("parts"), ("contents", i, "parts"), found)

    def to_openai(self, req: Request) -> dict[str, Any]:
        doc = self.parse(req)
        messages: list[dict[str, Any]] = []
        system = doc.get("systemInstruction") or doc.get("system_instruction")
        if isinstance(system, dict):
            messages.append({"role": "system", "content": _parts_text(system.get("parts"))})
        for content in doc.get("contents") or []:
            messages.extend(_chat_messages(content))
        chat: dict[str, Any] = {"model": self._model(doc, req) or "", "messages": messages}
        config = doc.get("generationConfig") or doc.get("generation_config") or {}
        copy_params(config, SAMPLING, chat)
        tools = [
            function_tool(d.get("name"), d.get("description"), d.get("parameters"))
            for group in doc.get("tools") or []
            if isinstance(group, dict)
            for d in group.get("functionDeclarations") or group.get("function_declarations") or []
            if isinstance(d, dict) and d.get("name")
        ]
        add_tools(chat, tools, _tool_choice(doc.get("toolConfig") or doc.get("tool_config")))
        if self._stream(doc, req):
            chat["stream"] = True
        return chat

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response:
        return json_response(response_object(completion))

    def stream_translator(self, req: Request) -> StreamTranslator:
        return GeminiStream(sse=req.query.get("alt") == "sse")


def _tool_choice(config: object) -> str:
    """Gemini's functionCallingConfig mode (AUTO|ANY|NONE, allowed names) -> a tool choice."""
    if not isinstance(config, dict):
        return "auto"
    calling = config.get("functionCallingConfig") or config.get("function_calling_config") or {}
    mode = str(calling.get("mode", "AUTO")).upper()
    allowed = calling.get("allowedFunctionNames") or calling.get("allowed_function_names") or []
    if mode == "ANY" and isinstance(allowed, list) and len(allowed) == 1:
        return str(allowed[0])
    return {"ANY": "required", "NONE": "none"}.get(mode, "auto")


def walk_parts(parts: object, path: JsonPath, found: Collector) -> None:
    """`parts[j].text`, text files inline, function responses; images are noted."""
    if not isinstance(parts, list):
        return
    for j, part in enumerate(parts):
        here = (*path, j)
        inline = part.get("inlineData") or part.get("inline_data")
        if "text" in part:
            found.add(part["text"], (*here, "text"))
        elif isinstance(inline, dict):
            key = "inlineData" if "inlineData" in part else "inline_data"
            _walk_inline(inline, (*here, key, "data"), found)
        elif "functionResponse" in part:
            walk_json(
                part["functionResponse"].get("response"),
                (*here, "functionResponse", "response"),
                found,
            )
        elif "fileData" in part or "file_data" in part:
            found.skip(render(here), "file sent by URI (fileData): not scanned")


def _walk_inline(inline: dict[str, Any], path: JsonPath, found: Collector) -> None:
    mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
    if mime.startswith("text/") or mime in ("application/json", "text/csv"):
        add_base64_text(found, inline.get("data"), path, mime)
        return
    text, reason = files.text_of_data_url(
        f"data:{mime};base64,{inline.get('data', '')}", "inlineData"
    )
    if text is None:
        found.skip(render(path), reason)
    elif text.strip():
        found.add_place(text, files.EXTRACTED_PLACE, render(path))


def _parts_text(parts: object) -> str:
    return (
        "".join(p.get("text", "") for p in parts if "text" in p) if isinstance(parts, list) else ""
    )


def _chat_messages(content: dict[str, Any]) -> list[dict[str, Any]]:
    role = "assistant" if content.get("role") == "model" else "user"
    parts = content.get("parts") or []
    out: list[dict[str, Any]] = []
    calls = []
    for part in parts:
        if "functionCall" in part:
            call = part["functionCall"]
            fn = {"name": call.get("name", ""), "arguments": json.dumps(call.get("args") or {})}
            calls.append(
                {"id": call.get("id") or call.get("name", ""), "type": "function", "function": fn}
            )
        elif "functionResponse" in part:
            answer = part["functionResponse"]
            out.append(
                {"role": "tool", "tool_call_id": answer.get("id") or answer.get("name", ""),
                 "content": json.dumps(answer.get("response") or {})}
            )  # fmt: skip
    text = _parts_text(parts)
    if text or calls:
        turn: dict[str, Any] = {"role": role, "content": text or None}
        if calls:
            turn["tool_calls"] = calls
        out.append(turn)
    return out


def response_object(
    completion: dict[str, Any], text: str | None = None, final: bool = True
) -> dict[str, Any]:
    """A GenerateContentResponse with one candidate."""
    parts: list[dict[str, Any]] = [{"text": text_of(completion) if text is None else text}]
    for _, name, args in tool_calls_of(completion):
        parts.append({"functionCall": {"name": name, "args": args}})
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if final:
        candidate["finishReason"] = FINISH_REASONS.get(finish_of(completion), "STOP")
    prompt_tokens, completion_tokens = usage_of(completion)
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": completion_tokens,
            "totalTokenCount": prompt_tokens + completion_tokens,
        },
        "modelVersion": completion.get("model", ""),
        "responseId": str(completion.get("id", "")),
    }


class GeminiStream:
    """Each chunk with text becomes one GenerateContentResponse; the last carries finishReason."""

    def __init__(self, sse: bool) -> None:
        self.sse = sse
        self.content_type = SSE_TYPE if sse else JSON_TYPE
        self.count = 0
        self.done = False
        self.calls = StreamedToolCalls()  # Gemini sends a functionCall part whole, at the end

    def _emit(self, doc: dict[str, Any]) -> bytes:
        payload = json.dumps(doc, ensure_ascii=False)
        self.count += 1
        if self.sse:
            return f"data: {payload}\r\n\r\n".encode()
        return (("[" if self.count == 1 else ",\r\n") + payload).encode()

    def feed(self, chunk: dict[str, Any]) -> bytes:
        text, finish = delta_of(chunk)
        self.calls.add(chunk)
        if self.done or not (text or finish):
            return b""
        self.done = finish is not None
        message: dict[str, Any] = {}
        if self.done and self.calls:
            message["tool_calls"] = self.calls.tool_calls()
        head = chunk | {"choices": [{"message": message, "finish_reason": finish or "stop"}]}
        return self._emit(response_object(head, text, final=self.done))

    def finish(self) -> bytes:
        out = b"" if self.done else self._emit(response_object({}, "", final=True))
        self.done = True
        return out + (b"" if self.sse else b"]")
