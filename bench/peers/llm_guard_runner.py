"""Run one of LLM Guard's input scanners (`secrets` or `anonymize`) over JSON-line records.

LLM Guard returns a sanitised prompt, not spans; the Secrets scanner computes each secret's
span itself and hands it to presidio's TextReplaceBuilder, so the runner records the spans there
(its sanitised text is unreliable for this: with two secrets on a line it masks the wrong place).
`anonymize` needs a Hugging Face NER model; offline it fails to build and every record is answered
with that error, which the benchmark shows as the reason the row is n/a.
"""

from __future__ import annotations

import logging
import sys

from peer_io import protect_stdout, read_records, write_error, write_findings

SPANS: list[tuple[int, int]] = []


def _record_replacements() -> None:
    """Make the Secrets scanner's TextReplaceBuilder note every span it is asked to replace."""
    from llm_guard.input_scanners import secrets as secrets_module

    base = secrets_module.TextReplaceBuilder

    class RecordingBuilder(base):  # type: ignore[misc, valid-type]
        def replace_text_get_insertion_index(self, replacement: str, start: int, end: int) -> int:
            SPANS.append((start, end))
            return super().replace_text_get_insertion_index(replacement, start, end)

    secrets_module.TextReplaceBuilder = RecordingBuilder


def _build(scanner: str) -> object:
    if scanner == "secrets":
        from llm_guard.input_scanners import Secrets

        _record_replacements()
        return Secrets()
    if scanner == "anonymize":
        from llm_guard.input_scanners import Anonymize
        from llm_guard.vault import Vault

        return Anonymize(Vault())
    raise SystemExit(f"unknown scanner {scanner!r}; expected secrets|anonymize")


def main(argv: list[str]) -> int:
    protect_stdout()
    logging.disable(logging.WARNING)
    scanner_name = argv[1] if len(argv) > 1 else "secrets"
    records = list(read_records())
    try:
        scanner = _build(scanner_name)
    except Exception as exc:  # no model offline: every record carries the reason
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        for record_id, _ in records:
            write_error(record_id, reason)
        return 0
    for record_id, text in records:
        try:
            SPANS.clear()
            _, is_valid, _ = scanner.scan(text)  # type: ignore[attr-defined]
        except Exception as exc:
            write_error(record_id, f"{type(exc).__name__}: {exc}")
            continue
        spans = [] if is_valid else [(s, e, scanner_name) for s, e in SPANS if e > s]
        if not is_valid and not spans:
            spans = [(0, len(text), scanner_name)]
        write_findings(record_id, spans)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
