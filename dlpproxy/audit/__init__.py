"""Remembering decisions: the SQLite audit store, its writer and exports for a SIEM."""

from dlpproxy.audit.events import event_for
from dlpproxy.audit.store import AuditError, AuditEvent, AuditWriter, FindingRecord, open_store

__all__ = ["AuditError", "AuditEvent", "AuditWriter", "FindingRecord", "event_for", "open_store"]
