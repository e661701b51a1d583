"""Paths into parsed JSON bodies: render them for `Segment.where`, read and replace a leaf."""

from __future__ import annotations

import json
from typing import Any

from dlpproxy.errors import BodyError

PathKey = str | int
JsonPath = tuple[PathKey, ...]


def render(path: JsonPath) -> str:
    """`("messages", 3, "content", 0, "text")` -> `messages[3].content[0].text`."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else key
    return out


def get(doc: Any, path: JsonPath) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def put(doc: Any, path: JsonPath, value: Any) -> None:
    """Replace the leaf at `path` in place; a path that does not exist is a BodyError."""
    try:
        get(doc, path)
        get(doc, path[:-1])[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        raise BodyError("no such place in the body", render(path)) from None


def parse(body: bytes, what: str = "body") -> Any:
    """Decode UTF-8 JSON with a reason that says whether it is truncated, malformed or not UTF-8."""
    if not body.strip():
        raise BodyError(f"empty {what}; expected a JSON document")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(
            f"{what} is not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            problem = f"truncated JSON {what}: it ends before the document is complete"
        else:
            problem = f"malformed JSON {what}: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise BodyError(problem) from None


def dump(doc: Any) -> bytes:
    """Serialise compactly and without escaping non-ASCII text, as the browsers and SDKs do."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
