"""What each gateway endpoint speaks: its provider, its adapter and the shape of its errors.

OpenAI endpoints answer errors as `{"error": {"message", "type", "param", "code"}}`, Anthropic's
`/v1/messages` as `{"type": "error", "error": {"type", "message"}}`, so an SDK raises its own
error class with our message. A provider stream cut midway ends with the format's error event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dlpproxy.gateway.embeddings import EMBEDDINGS
from dlpproxy.httpserver import HttpResponse
from dlpproxy.providers import BY_NAME
from dlpproxy.providers.base import INCIDENT_HEADER, Adapter
from dlpproxy.providers.openai_format import sse

OPENAI, ANTHROPIC = "openai", "anthropic"
JSON_HEADERS = (("content-type", "application/json"),)
# status -> error type; statuses not listed are server-side (`server_error` / `api_error`)
OPENAI_TYPES = {
    **dict.fromkeys((400, 401, 404, 405, 413, 415), "invalid_request_error"),
    403: "permission_error", 429: "rate_limit_error",
}  # fmt: skip
ANTHROPIC_TYPES = {
    **dict.fromkeys((400, 405, 415), "invalid_request_error"),
    401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A POST route: the provider it forwards to, the adapter that reads it, its error style."""

    route: str
    provider: str
    adapter: Adapter
    style: str
    chat: bool = True  # False: embeddings (no chat translation, no banner)


ENDPOINTS: dict[str, Endpoint] = {
    e.route: e
    for e in (
        Endpoint("/v1/chat/completions", OPENAI, BY_NAME["openai_chat"], OPENAI),
        Endpoint("/v1/responses", OPENAI, BY_NAME["openai_responses"], OPENAI),
        Endpoint("/v1/messages", ANTHROPIC, BY_NAME["anthropic"], ANTHROPIC),
        Endpoint("/v1/embeddings", OPENAI, EMBEDDINGS, OPENAI, chat=False),
    )
}


def style_of(path: str, anthropic_hint: bool = False) -> str:
    """The error style for a path; `/v1/models` speaks Anthropic to Anthropic's clients."""
    endpoint = ENDPOINTS.get(path)
    if endpoint is not None:
        return endpoint.style
    return ANTHROPIC if anthropic_hint else OPENAI


def error(
    style: str, status: int, message: str, code: str = "", incident: str = ""
) -> HttpResponse:
    """An error answer in the caller's format (with the incident header when there is one)."""
    if style == ANTHROPIC:
        kind = ANTHROPIC_TYPES.get(status, "api_error")
        doc: dict[str, object] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        kind = OPENAI_TYPES.get(status, "server_error")
        doc = {"error": {"message": message, "type": kind, "param": None, "code": code or None}}
    headers = (*JSON_HEADERS, (INCIDENT_HEADER, incident)) if incident else JSON_HEADERS
    return HttpResponse(status, headers, json.dumps(doc).encode())


def broken_stream_note(route: str, message: str) -> bytes:
    """The event that ends a provider stream cut midway, in the route's SSE format."""
    if route == "/v1/messages":
        return sse({"type": "error", "error": {"type": "api_error", "message": message}}, "error")
    inner = {"message": message, "type": "server_error", "code": "upstream_stream_broken"}
    if route == "/v1/responses":
        doc = {"type": "error", "code": "upstream_stream_broken", "message": message,
               "param": None, "error": inner}  # fmt: skip
        return sse(doc, "error")
    return sse({"error": inner})
