"""Claude in the browser: `POST /api/organizations/{org}/chat_conversations/{id}/completion`.

The request holds the new turn in `prompt` and pasted or uploaded text in
`attachments[].extracted_content`. The answer is SSE. With `rendering_mode: "messages"` (what
the current UI sends) it uses the Messages API's events (message_start ... message_stop);
otherwise the older form, a series of

    event: completion
    data: {"type": "completion", "completion": <next text>, "stop_reason": null | "stop_sequence",
           "model", "stop": null, "log_id", "messageLimit": {"type": "within_limit"}}
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from dlpproxy.providers.anthropic import AnthropicStream
from dlpproxy.providers.base import Collector, Request, StreamTranslator
from dlpproxy.providers.json_api import StreamingWebAdapter
from dlpproxy.providers.openai_format import SSE_TYPE, delta_of, sse

ROUTE = re.compile(r"/api/organizations/[^/]+/chat_conversations/[^/]+/(?:retry_)?completion")


class ClaudeWebAdapter(StreamingWebAdapter):
    name = "claude_web"

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and ROUTE.fullmatch(req.route) is not None

    def _walk(self, doc: dict[str, Any], found: Collector, req: Request) -> None:
        if not isinstance(doc.get("prompt"), str):
            raise TypeError("'prompt' is not a string")
        found.add(doc["prompt"], ("prompt",))
        for i, attachment in enumerate(doc.get("attachments") or []):
            found.add(attachment.get("extracted_content"), ("attachments", i, "extracted_content"))
        for i, _ in enumerate(doc.get("files") or []):
            found.skip(
                f"files[{i}]", "file uploaded earlier by reference: scanned at its upload, not here"
            )

    def to_openai(self, req: Request) -> dict[str, Any]:
        doc = self.parse(req)
        pieces = [
            f"{a.get('file_name', 'attachment')}:\n{a.get('extracted_content', '')}"
            for a in doc.get("attachments") or []
        ]
        pieces.append(str(doc.get("prompt") or ""))
        message = {"role": "user", "content": "\n\n".join(pieces)}
        return {"model": doc.get("model") or "", "messages": [message], "stream": True}

    def stream_translator(self, req: Request) -> StreamTranslator:
        doc = self.parse_or_empty(req)
        if doc.get("rendering_mode") == "messages":
            return AnthropicStream()
        return ClaudeWebCompletionStream(str(doc.get("model") or ""))


class ClaudeWebCompletionStream:
    """Chunks -> `completion` events with the new text; the last says `stop_sequence`."""

    content_type = SSE_TYPE

    def __init__(self, model: str) -> None:
        self.model = model
        self.log_id = uuid.uuid4().hex
        self.done = False

    def _event(self, text: str, stop_reason: str | None) -> bytes:
        data = {
            "type": "completion",
            "completion": text,
            "stop_reason": stop_reason,
            "model": self.model,
            "stop": None,
            "log_id": self.log_id,
            "messageLimit": {"type": "within_limit"},
        }
        return sse(data, "completion")

    def feed(self, chunk: dict[str, Any]) -> bytes:
        text, finish = delta_of(chunk)
        if self.done or not (text or finish):
            return b""
        out = self._event(text, None) if text else b""
        if finish:
            self.done = True
            out += self._event("", "stop_sequence")
        return out

    def finish(self) -> bytes:
        out = b"" if self.done else self._event("", "stop_sequence")
        self.done = True
        return out
