"""YAML rule files with line numbers, so a validation error can point at the line to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dlpproxy.errors import RulePackError

LINE = "__line__"


class _LineLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that records each mapping's 1-based line under the key `__line__`."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE] = node.start_mark.line + 1
        return mapping


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse `path` (a mapping at the top); syntax errors become RulePackError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulePackError(str(path), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulePackError(str(path), f"cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise RulePackError(str(path), f"invalid YAML: {exc.problem}", line=line) from None
    except yaml.YAMLError as exc:
        raise RulePackError(str(path), f"invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RulePackError(str(path), "expected a mapping at the top of the file", line=1)
    return data


def check_fields(raw: dict[str, Any], allowed: set[str], source: str, rule: str | None) -> None:
    """Unknown keys are errors: a typo in a rule must not silently disable part of it."""
    unknown = sorted(str(k) for k in raw if k != LINE and k not in allowed)
    if unknown:
        expected = ", ".join(sorted(allowed))
        raise RulePackError(
            source, f"unknown field '{unknown[0]}' (expected one of: {expected})", rule,
            raw.get(LINE),
        )  # fmt: skip


def require(raw: dict[str, Any], name: str, source: str, rule: str | None) -> None:
    if raw.get(name) in (None, ""):
        raise RulePackError(source, f"missing required field '{name}'", rule, raw.get(LINE))
