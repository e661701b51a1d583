"""OpenAI Chat Completions (`POST /v1/chat/completions`), streaming and not.

Every role is scanned, assistant turns included: clients resend the whole conversation, and an
assistant turn may hold values that dlpproxy restored into an earlier answer.
"""

from __future__ import annotations

from typing import Any

from dlpproxy.providers import files
from dlpproxy.providers.base import Collector, Request, Response, StreamTranslator
from dlpproxy.providers.json_api import JsonApiAdapter
from dlpproxy.providers.jsonpath import JsonPath, render
from dlpproxy.providers.openai_format import SSE_TYPE, json_response, sse

CHAT_ROUTE = "/v1/chat/completions"
# content part type -> the field holding its text (Chat Completions and Responses part types)
TEXT_PART_FIELDS = {
    "text": "text",
    "input_text": "text",
    "output_text": "text",
    "refusal": "refusal",
}


def walk_chat_messages(messages: object, found: Collector) -> None:
    """Collect `messages[i].content` (a string or parts), tool-call arguments, refusals."""
    if not isinstance(messages, list):
        raise TypeError("'messages' is not a list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TypeError(f"messages[{i}] is not an object")
        content = message.get("content")
        if isinstance(content, list):
            walk_content_parts(content, ("messages", i, "content"), found)
        else:
            found.add(content, ("messages", i, "content"))
        for j, call in enumerate(message.get("tool_calls") or []):
            args = (call.get("function") or {}).get("arguments")
            found.add(args, ("messages", i, "tool_calls", j, "function", "arguments"))


def walk_content_parts(parts: list[Any], path: JsonPath, found: Collector) -> None:
    """Text parts are text; files sent inline (PDF, text) are extracted; images are noted."""
    for j, part in enumerate(parts):
        here = (*path, j)
        if isinstance(part, str):
            found.add(part, here)
            continue
        kind = part.get("type")
        if kind in TEXT_PART_FIELDS:
            field = TEXT_PART_FIELDS[kind]
            found.add(part.get(field), (*here, field))
        elif kind in ("image_url", "input_image", "input_audio"):
            found.skip(render(here), f"{kind}: images and audio are not scanned")
        elif kind in ("file", "input_file"):
            inner = part.get("file") if kind == "file" else part
            add_inline_file(inner or {}, here, found)


def add_inline_file(file: dict[str, Any], path: JsonPath, found: Collector) -> None:
    """A file sent as a data URL (`file_data`) is decoded and its text extracted."""
    data = file.get("file_data")
    name = str(file.get("filename") or "file")
    where = render((*path, "file_data"))
    if not isinstance(data, str):
        found.skip(where, f"file '{name}' sent by reference (file_id): not scanned")
        return
    text, reason = files.text_of_data_url(data, name)
    if text is None:
        found.skip(where, reason)
    elif text.strip():
        found.add_place(text, files.EXTRACTED_PLACE, f"{where}:file={name}")


class ChatStream:
    """OpenAI chunks pass through as OpenAI SSE, ending with `data: [DONE]`."""

    content_type = SSE_TYPE

    def feed(self, chunk: dict[str, Any]) -> bytes:
        return sse(chunk)

    def finish(self) -> bytes:
        return sse("[DONE]")


class OpenAIChatAdapter(JsonApiAdapter):
    """api.openai.com Chat Completions; the OpenAI-compatible providers share its format."""

    name = "openai_chat"
    hosts: tuple[str, ...] = ("api.openai.com",)

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and req.host in self.hosts and req.route == CHAT_ROUTE

    def _walk(self, doc: dict[str, Any], found: Collector, req: Request) -> None:
        walk_chat_messages(doc.get("messages"), found)

    def to_openai(self, req: Request) -> dict[str, Any]:
        doc = self.parse(req)  # a fresh object on each call: ours to change
        model = self._model(doc, req)
        if model:
            doc["model"] = model
        return doc

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response:
        return json_response(completion)

    def stream_translator(self, req: Request) -> StreamTranslator:
        return ChatStream()
