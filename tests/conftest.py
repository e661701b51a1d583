"""Shared test fixtures: paths of the repository's rule packs, the gateway's stand-in provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.support.local_model"]

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def rules_dir() -> Path:
    return RULES


@pytest.fixture(scope="module")
def provider() -> Iterator[Any]:
    """A recording plain-HTTP stand-in for the gateway's providers, one per test module
    (tests/test_gateway_stack.py; a module may define its own instead)."""
    from tests.test_gateway_stack import Provider

    server = Provider()
    yield server
    server.stop()
