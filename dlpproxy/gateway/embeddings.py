"""OpenAI embeddings (`POST /v1/embeddings`): the `input` texts are the prompt.

A string or a list of strings is scanned; token-id arrays cannot be read without the model's
tokenizer, so they are noted as unscanned (a fail-closed policy refuses them). There is no chat
answer to put a message in, so a refusal is a 403 OpenAI error carrying the incident id.
"""

from __future__ import annotations

from typing import Any

from dlpproxy.errors import BodyError
from dlpproxy.providers.base import (
    Collector,
    Extracted,
    Request,
    Response,
    StreamTranslator,
)
from dlpproxy.providers.json_api import JsonApiAdapter
from dlpproxy.providers.openai_format import blocked_error

ROUTE = "/v1/embeddings"


class EmbeddingsAdapter(JsonApiAdapter):
    name = "openai_embeddings"

    def matches(self, req: Request) -> bool:
        return req.method == "POST" and req.route == ROUTE

    def _walk(self, doc: dict[str, Any], found: Collector, req: Request) -> None:
        items = doc.get("input")
        if isinstance(items, str):
            found.add(items, ("input",))
            return
        if not isinstance(items, list):
            raise TypeError("'input' is not a string or a list")
        if items and all(isinstance(i, int) for i in items):
            found.skip("input", "token ids: not scanned")
            return
        for i, item in enumerate(items):
            if isinstance(item, str):
                found.add(item, ("input", i))
            else:
                found.skip(f"input[{i}]", "token ids: not scanned")

    def _stream(self, doc: dict[str, Any], req: Request) -> bool:
        return False

    def block(self, req: Request, extracted: Extracted, message: str, incident_id: str) -> Response:
        return blocked_error(message, incident_id)

    def to_openai(self, req: Request) -> dict[str, Any]:
        return self.parse(req)  # already OpenAI's embeddings format

    def from_openai(self, completion: dict[str, Any], req: Request) -> Response:
        raise BodyError(f"{self.name}: an embeddings request has no chat answer")

    def stream_translator(self, req: Request) -> StreamTranslator:
        raise BodyError(f"{self.name}: embeddings are never streamed")


EMBEDDINGS = EmbeddingsAdapter()
