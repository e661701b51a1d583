"""Remembering decisions: the SQLite audit store, its writer and exports for a SIEM."""

from dlpproxy.audit.events import event_for, joined
from dlpproxy.audit.store import (
    AuditError,
    AuditEvent,
    AuditWriter,
    FindingRecord,
    audit_salt,
    new_event_id,
    open_store,
)

__all__ = [
    "AuditError",
    "AuditEvent",
    "AuditWriter",
    "FindingRecord",
    "audit_salt",
    "event_for",
    "joined",
    "new_event_id",
    "open_store",
]
