"""Clients for the company's own OpenAI-compatible models: config, health, breaker, streaming."""

from dlpproxy.localmodel.client import (
    Health,
    LocalModel,
    LocalModelError,
    LocalModelPool,
    LocalModels,
)
from dlpproxy.localmodel.config import LocalModelConfig, LocalModelConfigError, parse_local_models

__all__ = [
    "Health",
    "LocalModel",
    "LocalModelConfig",
    "LocalModelConfigError",
    "LocalModelError",
    "LocalModelPool",
    "LocalModels",
    "parse_local_models",
]
