"""Audit events for a SIEM: JSON lines, or ArcSight CEF lines (syslog-friendly)."""

from __future__ import annotations

import json
from typing import Any

from dlpproxy import __version__

# CEF severity 0-10 by action.
CEF_SEVERITY = {"allow": 1, "monitor": 3, "redact": 5, "reroute": 6, "block": 8}


def as_jsonl(row: dict[str, Any]) -> str:
    """One stored event as a JSON line (findings parsed back into a list)."""
    out = dict(row)
    out["findings"] = json.loads(row.get("findings") or "[]")
    out["categories"] = [c for c in (row.get("categories") or "").split(",") if c]
    return json.dumps(out, ensure_ascii=False, sort_keys=True)


def as_cef(row: dict[str, Any]) -> str:
    """One stored event as a CEF:0 line; header fields escape | and \\, extensions = and \\."""
    action = str(row.get("action", ""))
    header = [
        "CEF:0", "dlpproxy", "dlpproxy", __version__, _h(f"{action}:{row.get('rule') or '-'}"),
        _h(f"prompt {action}"), str(CEF_SEVERITY.get(action, 3)),
    ]  # fmt: skip
    ext = {
        "rt": str(int(float(row.get("ts", 0)) * 1000)),
        "externalId": row.get("id", ""),
        "suser": row.get("user", ""),
        "src": row.get("client", ""),
        "dhost": row.get("host", ""),
        "request": row.get("path", ""),
        "act": action,
        "cs1Label": "categories",
        "cs1": row.get("categories", ""),
        "cs2Label": "service",
        "cs2": row.get("service", ""),
        "cs3Label": "rule",
        "cs3": row.get("rule", ""),
        "cn1Label": "scanMs",
        "cn1": str(row.get("scan_ms", "")),
        "fsize": str(row.get("request_bytes", "")),
    }
    return "|".join(header) + "|" + " ".join(f"{k}={_e(str(v))}" for k, v in ext.items())


def _h(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _e(value: str) -> str:
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")
