"""The one way to write audit history: `record(...)`, called by every service."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent, AuditHead
from apps.core import request_context

GENESIS_HASH = "0" * 64


def record(
    *,
    actor: Any | None,
    action: str,
    target: models.Model | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    object_type: str = "",
    object_id: str = "",
    object_label: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    `target` fills object type/id/label; pass them explicitly for things that are not rows.
    `before`/`after` are plain dicts (see `snapshot`); the stored `changes` keeps only the keys
    whose value differs.
    """
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or str(target.pk)
        object_label = object_label or str(target)[:255]
    before_json = _to_json(before)
    after_json = _to_json(after)
    context = request_context.current()
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    with transaction.atomic():
        head = _locked_head()
        event = AuditEvent(
            sequence=head.sequence + 1,
            timestamp=timezone.now(),
            actor=actor if is_user else None,
            actor_username=actor.get_username() if is_user else "",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            object_label=str(object_label)[:255],
            before=before_json,
            after=after_json,
            changes=diff(before_json, after_json),
            request_id=context.request_id,
            ip_address=context.ip_address,
            prev_hash=head.hash,
        )
        event.hash = event_hash(event)
        event.save()
        head.sequence, head.hash = event.sequence, event.hash
        head.save(update_fields=["sequence", "hash"])
    return event


def _locked_head() -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    # Only an empty trail may start a new head (a fresh or flushed database); a missing head
    # beside existing events means tampering, and writing on would hide it.
    if AuditEvent.objects.exists():
        raise RuntimeError("The audit head is missing while events exist; run `manage.py verify_audit`.")
    AuditHead.objects.get_or_create(pk=1, defaults={"sequence": 0, "hash": GENESIS_HASH})
    return AuditHead.objects.select_for_update().get(pk=1)


def snapshot(instance: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The audit-worthy state of a row: concrete field values (foreign keys as ids)."""
    wanted = set(fields) if fields is not None else None
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if wanted is not None and field.name not in wanted:
            continue
        data[field.attname if field.is_relation else field.name] = field.value_from_object(instance)
    return _to_json(data) or {}


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    before, after = before or {}, after or {}
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def event_hash(event: AuditEvent) -> str:
    payload = {
        "sequence": event.sequence,
        "timestamp": event.timestamp.isoformat(),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_label": event.object_label,
        "before": event.before,
        "after": event.after,
        "changes": event.changes,
        "request_id": event.request_id,
        "ip_address": event.ip_address,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _to_json(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # Round-trip through JSON so what is hashed now is exactly what the database gives back.
    if value is None:
        return None
    return json.loads(json.dumps(dict(value), cls=DjangoJSONEncoder))
