"""ChatGPT in the browser: `POST /backend-api/conversation` (and `/f/conversation`, `-anon`).

The request carries only the new turn: `messages[].content.parts[]` strings (images are dicts
and are noted, not scanned). The web UI always reads the answer as SSE. We answer in the
message-snapshot format the UI has long accepted, one `data:` event per snapshot:

    data: {"message": {"id", "author": {"role": "assistant", "name": null, "metadata": {}},
           "create_time", "update_time": null, "content": {"content_type": "text",
           "parts": [<whole text so far>]}, "status": "in_progress" | "finished_successfully",
           "end_turn": null | true, "weight": 1.0, "metadata": {"model_slug", "parent_id",
           "finish_details": {"type": "stop"} on the last one}, "recipient": "all",
           "channel": null}, "conversation_id", "error": null}
    data: [DONE]

Newer UIs also understand a delta encoding (`event: delta`); the snapshot form is what every
version reads, so we emit that.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from dlpproxy.providers.base import Collector, Request, StreamTranslator
from dlpproxy.providers.json_api import StreamingWebAdapter
from dlpproxy.providers.openai_format import SSE_TYPE, delta_of, sse

# Regenerating or continuing an answer sends no new user text.
NO_NEW_TEXT = ("variant", "continue")
ROUTE = re.compile(r"/backend-(?:api|anon)/(?:f/)?conversation")


class ChatGPTWebAdapter(StreamingWebAdapter):
    name = "chatgpt_web"

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and ROUTE.fullmatch(req.route) is not None

    def _walk(self, doc: dict[str, Any], found: Collector, req: Request) -> None:
        messages = doc.get("messages")
        if not isinstance(messages, list) and doc.get("action") not in NO_NEW_TEXT:
            raise TypeError("'messages' is not a list")
        for i, message in enumerate(messages or []):
            content = message.get("content") or {}
            for j, part in enumerate(content.get("parts") or []):
                here = ("messages", i, "content", "parts", j)
                if isinstance(part, str):
                    found.add(part, here)
                else:
                    found.skip(
                        f"messages[{i}].content.parts[{j}]",
                        f"{part.get('content_type', 'attachment')}: not scanned",
                    )
            found.add(content.get("text"), ("messages", i, "content", "text"))

    def to_openai(self, req: Request) -> dict[str, Any]:
        doc = self.parse(req)
        messages = []
        for message in doc.get("messages") or []:
            parts = (message.get("content") or {}).get("parts") or []
            text = "\n".join(p for p in parts if isinstance(p, str))
            role = (message.get("author") or {}).get("role", "user")
            messages.append({"role": role, "content": text})
        return {"model": doc.get("model") or "", "messages": messages, "stream": True}

    def stream_translator(self, req: Request) -> StreamTranslator:
        doc = self.parse_or_empty(req)
        messages = doc.get("messages") or [{}]
        return ChatGPTWebStream(
            conversation_id=str(doc.get("conversation_id") or uuid.uuid4()),
            parent_id=str(messages[-1].get("id") or doc.get("parent_message_id") or ""),
            model=str(doc.get("model") or "auto"),
        )


class ChatGPTWebStream:
    """Chunks -> growing message snapshots, the last one finished, then `data: [DONE]`."""

    content_type = SSE_TYPE

    def __init__(self, conversation_id: str, parent_id: str, model: str) -> None:
        self.conversation_id = conversation_id
        self.parent_id = parent_id
        self.model = model
        self.message_id = str(uuid.uuid4())
        self.created = time.time()
        self.text = ""
        self.done = False

    def _snapshot(self, finished: bool) -> bytes:
        metadata: dict[str, Any] = {"model_slug": self.model, "parent_id": self.parent_id}
        if finished:
            metadata["finish_details"] = {"type": "stop", "stop_tokens": []}
            metadata["is_complete"] = True
        message = {
            "id": self.message_id,
            "author": {"role": "assistant", "name": None, "metadata": {}},
            "create_time": self.created,
            "update_time": None,
            "content": {"content_type": "text", "parts": [self.text]},
            "status": "finished_successfully" if finished else "in_progress",
            "end_turn": True if finished else None,
            "weight": 1.0,
            "metadata": metadata,
            "recipient": "all",
            "channel": None,
        }
        return sse({"message": message, "conversation_id": self.conversation_id, "error": None})

    def feed(self, chunk: dict[str, Any]) -> bytes:
        text, finish = delta_of(chunk)
        if self.done or not (text or finish):
            return b""
        self.text += text
        self.done = finish is not None
        return self._snapshot(self.done)

    def finish(self) -> bytes:
        last = b"" if self.done else self._snapshot(True)
        self.done = True
        return last + sse("[DONE]")
