"""Reads of the audit trail, and the chain verification."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import QuerySet

from apps.audit.models import AuditEvent, AuditHead
from apps.audit.services import GENESIS_HASH, event_hash

# Who may read an object's history is decided by the app that owns the object: apps register
# a check for their models here (dependency inversion: audit never imports them).
_object_visibility: dict[str, Callable[[object, str], bool]] = {}


def register_object_visibility(object_type: str, can_view: Callable[[object, str], bool]) -> None:
    """`can_view(user, object_id)` answers whether `user` may see that object (and its history)."""
    _object_visibility[object_type] = can_view


def can_view_audit_log(user) -> bool:
    return user.is_authenticated and user.has_perm("audit.view_auditevent")


def can_view_object_history(user, object_type: str, object_id: str) -> bool:
    if can_view_audit_log(user):
        return True
    check = _object_visibility.get(object_type)
    return bool(user.is_authenticated and check and check(user, object_id))


def events_for_log(user) -> QuerySet[AuditEvent]:
    """The global log: admins and approvers only; everyone else gets an empty set."""
    if not can_view_audit_log(user):
        return AuditEvent.objects.none()
    return AuditEvent.objects.all()


def events_for_object(*, object_type: str, object_id: str) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(object_type=object_type, object_id=str(object_id))


@dataclass
class ChainReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(batch_size: int = 2000, progress: Callable[[int, int], None] | None = None) -> ChainReport:
    """Walk the chain in order and report every edited, missing or re-ordered event."""
    report = ChainReport()
    total = AuditEvent.objects.count() if progress else 0
    expected_prev, expected_sequence = GENESIS_HASH, 1
    events = AuditEvent.objects.order_by("sequence").iterator(chunk_size=batch_size)
    for event in events:
        report.checked += 1
        if event.sequence != expected_sequence:
            report.problems.append(
                f"event #{expected_sequence}"
                + (f"..#{event.sequence - 1}" if event.sequence - 1 > expected_sequence else "")
                + " missing (deleted)"
            )
        if event.prev_hash != expected_prev:
            report.problems.append(f"event #{event.sequence}: link to the previous event is broken")
        if event_hash(event) != event.hash:
            report.problems.append(f"event #{event.sequence}: content does not match its hash (edited)")
        expected_prev, expected_sequence = event.hash, event.sequence + 1
        if progress and report.checked % batch_size == 0:
            progress(report.checked, total)
    head = AuditHead.objects.filter(pk=1).first()
    last_sequence = expected_sequence - 1
    if head is None:
        if report.checked:
            report.problems.append("the audit head row is missing (deleted)")
    elif head.sequence != last_sequence:
        report.problems.append(
            f"the newest event should be #{head.sequence} but the chain ends at #{last_sequence} (deleted tail)"
        )
    elif head.hash != expected_prev:
        report.problems.append("the newest event's hash differs from the recorded head (edited tail)")
    return report
