"""Masked renderings of sensitive values, for people and for the audit store (never the value)."""

from __future__ import annotations

import hashlib


def mask(value: str, keep: int = 2) -> str:
    """`AKIA...` -> `AK****************CD`: ends kept only when the value is long enough to hide."""
    value = value.replace("\n", " ")
    if len(value) <= 4 * keep + 2:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def value_hash(value: str, salt: bytes = b"") -> str:
    """A stable, salted SHA-256 of a value, so repeats can be counted without storing it."""
    return hashlib.sha256(salt + value.encode("utf-8", "surrogatepass")).hexdigest()


def excerpt(text: str, start: int, end: int, context: int = 12) -> str:
    """The masked value with a little plain context on each side, on one line."""
    before = text[max(0, start - context) : start]
    after = text[end : end + context]
    return f"{before}{mask(text[start:end])}{after}".replace("\n", " ").replace("\r", " ")
