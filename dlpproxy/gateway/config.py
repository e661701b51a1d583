"""`gateway.yaml`: the providers the gateway forwards to, the apps' keys, the fallback switch.

Example::

    version: 1
    fallback_to_local: true          # provider down, 429 or 5xx: the local model answers
    providers:
      openai:
        base_url: https://api.openai.com/v1
        api_key_env: OPENAI_API_KEY  # the key is read from the environment, never from here
        models: [gpt-4o-mini]        # /v1/models lists these; others are refused (empty: any)
      anthropic:
        base_url: https://api.anthropic.com/v1
        api_key_env: ANTHROPIC_API_KEY
    keys:                            # only sha256 hashes; `dlpproxy gateway --new-key APP` mints
      - {app: billing-bot, groups: [finance], sha256: "5e8f..."}
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dlpproxy.detect.yamlfile import LINE, check_fields, load_yaml
from dlpproxy.errors import RulePackError
from dlpproxy.watched import WatchedFile

PROVIDERS = ("openai", "anthropic")
TOP_FIELDS = {"version", "fallback_to_local", "providers", "keys"}
PROVIDER_FIELDS = {"base_url", "api_key_env", "models", "timeout_s", "connect_timeout_s"}
KEY_FIELDS = {"app", "groups", "sha256"}
KEY_PREFIX = "dlpgw-"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class GatewayConfigError(RulePackError):
    """gateway.yaml is invalid, or a provider key is missing from the environment."""

    def __init__(self, source: str, problem: str, line: int | None = None):
        super().__init__(source, problem, None, line)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One external provider; `api_key` comes from the environment and is never shown."""

    name: str
    base_url: str
    api_key_env: str
    api_key: str = field(default="", repr=False)
    models: tuple[str, ...] = ()
    timeout_s: float = 300.0
    connect_timeout_s: float = 5.0

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


@dataclass(frozen=True, slots=True)
class AppKey:
    app: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    source: str = "<defaults>"
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    keys: dict[str, AppKey] = field(default_factory=dict)  # sha256 hex of the key -> app
    fallback_to_local: bool = False

    def app_for(self, presented: str) -> AppKey | None:
        """The app a presented key belongs to (None: unknown key)."""
        return self.keys.get(key_hash(presented)) if presented else None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key(app: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
    """A fresh gateway key and the `keys:` line for gateway.yaml holding only its hash."""
    for name in (app, *groups):
        if not re.fullmatch(r"[\w.@-]+", name):
            problem = f"app or group name '{name}' must be letters, digits, ._@-"
            raise GatewayConfigError("--new-key", problem)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    listed = ", ".join(groups)
    return key, f'  - {{app: {app}, groups: [{listed}], sha256: "{key_hash(key)}"}}'


def load_gateway_config(path: Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Load and check gateway.yaml; provider keys are read from `environ` (os.environ)."""
    source = str(path)
    env = os.environ if environ is None else environ
    data = load_yaml(path)  # a RulePackError names the file and line, as ours do
    check_fields(data, TOP_FIELDS, source, None)
    if data.get("version") != 1:
        raise GatewayConfigError(source, "expected 'version: 1'", data.get(LINE))
    fallback = data.get("fallback_to_local", False)
    if not isinstance(fallback, bool):
        raise GatewayConfigError(source, "fallback_to_local must be true or false")
    providers = {
        name: _provider(name, raw, source, env) for name, raw in _mapping(data, "providers", source)
    }
    keys: dict[str, AppKey] = {}
    for raw in _list(data, "keys", source):
        digest, app = _key(raw, source)
        if digest in keys:
            raise GatewayConfigError(source, f"key of '{app.app}' is listed twice", raw.get(LINE))
        keys[digest] = app
    return GatewayConfig(source, providers, keys, fallback)


def _provider(name: str, raw: Any, source: str, env: Mapping[str, str]) -> ProviderConfig:
    if name not in PROVIDERS:
        raise GatewayConfigError(source, f"unknown provider '{name}' (known: openai, anthropic)")
    if not isinstance(raw, dict):
        raise GatewayConfigError(source, f"providers.{name} must be a mapping")
    line = raw.get(LINE)
    try:
        check_fields(raw, PROVIDER_FIELDS, source, None)
    except RulePackError as exc:
        raise GatewayConfigError(source, f"providers.{name}: {exc.problem}", line) from None
    base_url = str(raw.get("base_url") or "").rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
        problem = f"providers.{name}.base_url '{base_url}' is not an http(s) URL"
        raise GatewayConfigError(source, problem, line)
    var = str(raw.get("api_key_env") or "")
    if not var:
        raise GatewayConfigError(source, f"providers.{name}: missing 'api_key_env'", line)
    if not env.get(var):
        problem = f"providers.{name}: environment variable {var} (its API key) is not set"
        raise GatewayConfigError(source, problem, line)
    models = raw.get("models") or []
    if not isinstance(models, list):
        raise GatewayConfigError(source, f"providers.{name}.models must be a list", line)
    try:
        timeout, connect = float(raw.get("timeout_s", 300)), float(raw.get("connect_timeout_s", 5))
    except (TypeError, ValueError):
        problem = f"providers.{name}: timeouts must be numbers"
        raise GatewayConfigError(source, problem, line) from None
    return ProviderConfig(
        name, base_url, var, env[var], tuple(str(m) for m in models), timeout, connect
    )


def _key(raw: Any, source: str) -> tuple[str, AppKey]:
    if not isinstance(raw, dict):
        raise GatewayConfigError(source, "each entry of 'keys' must be a mapping")
    line = raw.get(LINE)
    try:
        check_fields(raw, KEY_FIELDS, source, None)
    except RulePackError as exc:
        raise GatewayConfigError(source, f"keys: {exc.problem}", line) from None
    app, digest, groups = str(raw.get("app") or ""), raw.get("sha256"), raw.get("groups")
    if not app:
        raise GatewayConfigError(source, "keys: missing 'app'", line)
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest.lower()):
        problem = f"keys: '{app}': sha256 must be 64 hex digits in quotes (the hash, never the key)"
        raise GatewayConfigError(source, problem, line)
    if groups is not None and not isinstance(groups, list):
        raise GatewayConfigError(source, f"keys: '{app}': groups must be a list", line)
    return digest.lower(), AppKey(app, tuple(str(g) for g in groups or ()))


def _mapping(data: dict[str, Any], key: str, source: str) -> list[tuple[str, Any]]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise GatewayConfigError(source, f"'{key}' must be a mapping", data.get(LINE))
    return [(str(k), v) for k, v in value.items() if k != LINE]


def _list(data: dict[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise GatewayConfigError(source, f"'{key}' must be a list", data.get(LINE))
    return value


class GatewayConfigHolder(WatchedFile[GatewayConfig]):
    """gateway.yaml, reloaded when it changes (keys, providers, fallback); a broken edit keeps
    the previous configuration and says why (`error`)."""

    kind = "gateway configuration"

    def __init__(self, path: Path, check_every: float = 1.0):
        super().__init__(path, load_gateway_config, check_every)
