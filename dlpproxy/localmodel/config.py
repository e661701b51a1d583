"""The local models section of the policy: where each company model lives and how to call it.

    local_models:
      company:
        base_url: http://gpu-box:8000/v1   # vLLM; Ollama :11434/v1, llama.cpp server :8080/v1
        model: qwen2.5-coder-32b
        api_key_env: COMPANY_MODEL_KEY     # the key itself never sits in the policy file

Everything but `base_url` and `model` has a default; a bad value fails with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from dlpproxy.errors import DlpError


class LocalModelConfigError(DlpError):
    """The `local_models` section is invalid; the message names the key and the problem."""


@dataclass(frozen=True, slots=True)
class LocalModelConfig:
    """One OpenAI-compatible model server (vLLM, Ollama, llama.cpp server, TGI, ...)."""

    name: str
    base_url: str  # the OpenAI base, ending in /v1 for the common servers
    model: str  # the name the server knows the model by
    api_key: str | None = field(default=None, repr=False)  # resolved from api_key_env
    api_key_env: str | None = None
    timeout_s: float = 120.0  # a whole answer that is not streamed
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 60.0  # a stream's first chunk
    idle_timeout_s: float = 30.0  # the longest gap between two chunks of a stream
    max_connections: int = 32
    health_path: str = "/models"  # under base_url
    health_ttl_s: float = 10.0  # how long a health result is trusted
    breaker_failures: int = 3  # consecutive failures that open the circuit
    breaker_reset_s: float = 30.0  # open -> half-open after this

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")


_REQUIRED = ("base_url", "model")
_SECONDS = ("timeout_s", "connect_timeout_s", "first_token_timeout_s", "idle_timeout_s",
            "health_ttl_s", "breaker_reset_s")  # fmt: skip
_COUNTS = ("max_connections", "breaker_failures")
_KEYS = tuple(f.name for f in fields(LocalModelConfig) if f.name not in ("name", "api_key"))


def parse_local_models(
    doc: Mapping[str, Any] | None,
    where: str = "local_models",
    environ: Mapping[str, str] | None = None,
) -> dict[str, LocalModelConfig]:
    """`{name: {base_url, model, ...}}` -> configs by name; LocalModelConfigError on bad input.

    `where` prefixes every message (e.g. "rules/policy.yaml: local_models"); `environ` is where
    `api_key_env` is looked up (os.environ by default).
    """
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise LocalModelConfigError(
            f"{where}: expected a mapping of model names to settings, got {type(doc).__name__}"
        )
    env = os.environ if environ is None else environ
    return {
        str(name): _parse_one(str(name), entry, f"{where}.{name}", env)
        for name, entry in doc.items()
    }


def _parse_one(name: str, entry: Any, where: str, env: Mapping[str, str]) -> LocalModelConfig:
    if not name.strip():
        raise LocalModelConfigError(f"{where}: a local model needs a non-empty name")
    if not isinstance(entry, Mapping):
        raise LocalModelConfigError(
            f"{where}: expected settings (base_url, model, ...), got {type(entry).__name__}"
        )
    if "api_key" in entry:
        raise LocalModelConfigError(
            f"{where}.api_key: keys do not belong in the policy file; put the key in an "
            "environment variable and name it in api_key_env"
        )
    unknown = sorted(str(k) for k in entry if k not in _KEYS)
    if unknown:
        raise LocalModelConfigError(
            f"{where}: unknown setting {', '.join(repr(k) for k in unknown)}; "
            f"expected {', '.join(_KEYS)}"
        )
    for key in _REQUIRED:
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise LocalModelConfigError(f"{where}.{key}: required, a non-empty string")
    values: dict[str, Any] = {
        "base_url": _base_url(entry["base_url"], f"{where}.base_url"),
        "model": entry["model"].strip(),
    }
    for key in _SECONDS:
        if key in entry:
            values[key] = _positive(entry[key], f"{where}.{key}", float)
    for key in _COUNTS:
        if key in entry:
            values[key] = _positive(entry[key], f"{where}.{key}", int)
    if "health_path" in entry:
        path = entry["health_path"]
        if not isinstance(path, str) or not path.startswith("/"):
            raise LocalModelConfigError(
                f"{where}.health_path: expected a path starting with '/', got {path!r}"
            )
        values["health_path"] = path
    if entry.get("api_key_env") is not None:
        var = entry["api_key_env"]
        if not isinstance(var, str) or not var.strip():
            raise LocalModelConfigError(
                f"{where}.api_key_env: expected an environment variable name"
            )
        if not env.get(var):
            raise LocalModelConfigError(
                f"{where}.api_key_env: environment variable {var!r} is not set (or empty)"
            )
        values["api_key_env"], values["api_key"] = var, env[var]
    return LocalModelConfig(name=name, **values)


def _base_url(value: str, where: str) -> str:
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LocalModelConfigError(
            f"{where}: expected an http(s) URL such as http://host:8000/v1, got {value!r}"
        )
    if parts.query or parts.fragment:
        raise LocalModelConfigError(f"{where}: no query or fragment allowed, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise LocalModelConfigError(f"{where}: {exc}, got {value!r}") from None
    return url


def _positive(value: Any, where: str, kind: type[int] | type[float]) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok:
        expected = "a positive whole number" if kind is int else "a positive number of seconds"
        raise LocalModelConfigError(f"{where}: expected {expected}, got {value!r}")
    return kind(value)
