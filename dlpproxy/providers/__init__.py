"""Service adapters: where the user's text is in each AI service's requests.

`ADAPTERS` is ordered: the first adapter whose `matches` accepts a request wins, and the
generic adapter comes last so that an unknown body to an AI host is still scanned. Adding a
service is adding one module and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlpproxy.providers.anthropic import AnthropicAdapter
from dlpproxy.providers.azure import AzureOpenAIAdapter
from dlpproxy.providers.base import (
    INCIDENT_HEADER,
    Adapter,
    Extracted,
    Place,
    Request,
    Response,
    StreamTranslator,
    UnknownShape,
    Unscanned,
    stream_from_openai,
)
from dlpproxy.providers.bodies import decode_body
from dlpproxy.providers.chatgpt_web import ChatGPTWebAdapter
from dlpproxy.providers.claude_web import ClaudeWebAdapter
from dlpproxy.providers.compatible import OpenAICompatibleAdapter
from dlpproxy.providers.gemini import GeminiAdapter
from dlpproxy.providers.generic import GenericAdapter
from dlpproxy.providers.openai_chat import OpenAIChatAdapter
from dlpproxy.providers.openai_responses import OpenAIResponsesAdapter
from dlpproxy.providers.services import Service, is_ai_host, load_services, service_for
from dlpproxy.settings import Settings

ADAPTERS: tuple[type[Adapter], ...] = (
    ChatGPTWebAdapter,
    ClaudeWebAdapter,
    OpenAIResponsesAdapter,
    AnthropicAdapter,
    GeminiAdapter,
    AzureOpenAIAdapter,
    OpenAIChatAdapter,
    OpenAICompatibleAdapter,
    GenericAdapter,
)
BY_NAME: dict[str, Adapter] = {cls.name: cls() for cls in ADAPTERS}
GENERIC = BY_NAME["generic"]
SERVICES_FILE = "ai-services.yaml"


def adapter_for(req: Request, services: tuple[Service, ...] | None = None) -> Adapter | None:
    """The adapter for this request, or None when there is nothing to scan.

    Without `services` every adapter is tried in order. With them, only the adapters of the
    service that owns the host are tried, then the generic one; a host that no service lists
    is not AI traffic (None).
    """
    if services is None:
        return next((a for a in BY_NAME.values() if a.matches(req)), None)
    service = service_for(services, req.host, req.path)
    if service is None:
        return None
    for name in service.adapters:
        adapter = BY_NAME[name]
        if adapter.matches(req):
            return adapter
    return GENERIC if GENERIC.matches(req) else None


@dataclass(frozen=True, slots=True)
class Reading:
    """What `read_request` found: the adapter that read the body and the text it extracted.

    `fallback` says why the generic adapter read it instead of the service's own adapter
    (the service changed its format); use `adapter` for rewrite and block either way.
    """

    adapter: Adapter
    extracted: Extracted
    fallback: str = ""


def read_request(req: Request, services: tuple[Service, ...] | None = None) -> Reading | None:
    """Pick the adapter and extract; an unknown shape falls back to the generic adapter.

    None: not AI traffic, or a request without a body. A BodyError (malformed, truncated,
    not UTF-8, wrong type) propagates: the caller blocks it with the error as the reason.
    """
    adapter = adapter_for(req, services)
    if adapter is None:
        return None
    return read_with(adapter, req)


def read_with(adapter: Adapter, req: Request) -> Reading:
    """Extract with `adapter`; a body shape it does not know goes to the generic adapter."""
    try:
        return Reading(adapter, adapter.extract(req))
    except UnknownShape as exc:
        return Reading(GENERIC, GENERIC.extract(req), fallback=str(exc))


def default_services(settings: Settings | None = None) -> tuple[Service, ...]:
    """`rules/ai-services.yaml` from the settings' rules directory."""
    rules_dir: Path = (settings or Settings()).rules_dir
    return load_services(rules_dir / SERVICES_FILE, frozenset(BY_NAME))


__all__ = [
    "ADAPTERS",
    "BY_NAME",
    "INCIDENT_HEADER",
    "Adapter",
    "Extracted",
    "Place",
    "Reading",
    "Request",
    "Response",
    "Service",
    "StreamTranslator",
    "UnknownShape",
    "Unscanned",
    "adapter_for",
    "decode_body",
    "default_services",
    "is_ai_host",
    "load_services",
    "read_request",
    "read_with",
    "service_for",
    "stream_from_openai",
]
