"""Moved to :mod:`headshot_lab.audit.batch` (audit logic lives in the audit layer); kept for old imports."""

from headshot_lab.audit.batch import AUDIT_METRICS, BatchAudit, PersonTone, audit_batch, format_audit_card

__all__ = ["AUDIT_METRICS", "BatchAudit", "PersonTone", "audit_batch", "format_audit_card"]
