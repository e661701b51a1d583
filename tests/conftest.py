"""Shared test fixtures: paths of the repository's rule packs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.support.local_model"]

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def rules_dir() -> Path:
    return RULES
