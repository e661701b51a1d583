"""The AI services file (`rules/ai-services.yaml`): which hosts are AI, their adapters, sanctioned.

Only hosts listed here are decrypted by the proxy; everything else is tunnelled untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from dlpproxy.detect.yamlfile import LINE, check_fields, load_yaml, require
from dlpproxy.errors import RulePackError

FIELDS = {"name", "hosts", "adapters", "sanctioned", "description"}


@dataclass(frozen=True, slots=True)
class Service:
    """An AI service: host patterns (`*.openai.azure.com`, `huggingface.co/chat`), adapters."""

    name: str
    hosts: tuple[str, ...]
    adapters: tuple[str, ...]
    sanctioned: bool
    description: str = ""

    def matches_host(self, host: str) -> bool:
        """True when some pattern names this host (the proxy must decrypt it)."""
        host = host.lower().rstrip(".")
        return any(fnmatchcase(host, p.partition("/")[0]) for p in self.hosts)

    def matches(self, host: str, path: str) -> bool:
        """Host and, for patterns with a path (`huggingface.co/chat`), the path prefix."""
        host = host.lower().rstrip(".")
        for pattern in self.hosts:
            glob, slash, prefix = pattern.partition("/")
            if fnmatchcase(host, glob) and (not slash or path.startswith("/" + prefix)):
                return True
        return False


def load_services(path: Path, adapter_names: frozenset[str]) -> tuple[Service, ...]:
    """Read and validate the services file; errors name the file, line and field."""
    source = str(path)
    data = load_yaml(path)
    check_fields(data, {"services"}, source, None)
    raw_services = data.get("services")
    if not isinstance(raw_services, list) or not raw_services:
        raise RulePackError(source, "'services' must be a non-empty list", line=data.get(LINE))
    services = [_service(raw, source, adapter_names) for raw in raw_services]
    seen: set[str] = set()
    for service, raw in zip(services, raw_services, strict=True):
        if service.name in seen:
            raise RulePackError(source, "duplicate service name", service.name, raw.get(LINE))
        seen.add(service.name)
    return tuple(services)


def _service(raw: Any, source: str, adapter_names: frozenset[str]) -> Service:
    if not isinstance(raw, dict):
        raise RulePackError(source, f"each service must be a mapping, got {type(raw).__name__}")
    name = raw.get("name")
    check_fields(raw, FIELDS, source, name)
    for field in ("name", "hosts"):
        require(raw, field, source, name)
    line = raw.get(LINE)
    hosts = _strings(raw["hosts"], "hosts", source, name, line)
    adapters = _strings(raw.get("adapters", []), "adapters", source, name, line)
    for adapter in adapters:
        if adapter not in adapter_names:
            known = ", ".join(sorted(adapter_names))
            raise RulePackError(source, f"unknown adapter '{adapter}' (known: {known})", name, line)
    sanctioned = raw.get("sanctioned", False)
    if not isinstance(sanctioned, bool):
        raise RulePackError(source, "'sanctioned' must be true or false", name, line)
    description = str(raw.get("description") or "")
    return Service(str(name), hosts, adapters, sanctioned, description)


def _strings(value: Any, field: str, source: str, name: Any, line: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise RulePackError(source, f"'{field}' must be a string or a list of strings", name, line)
    return tuple(v.lower() if field == "hosts" else v for v in items)


def service_for(services: tuple[Service, ...], host: str, path: str = "/") -> Service | None:
    """The first service whose patterns match host and path; None for non-AI traffic."""
    return next((s for s in services if s.matches(host, path)), None)


def is_ai_host(services: tuple[Service, ...], host: str) -> bool:
    """Whether the proxy should decrypt this host (decided at CONNECT time, host only)."""
    return any(s.matches_host(host) for s in services)
