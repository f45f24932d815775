"""Every write of monitoring data.

Telemetry (merge_minutes) is machine-written and not audited: it is a measurement, written many
times a minute. What people change is audited: monitoring settings and outcome feedback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import record as audit
from apps.audit.services import snapshot
from apps.deployments import permissions as deployment_permissions
from apps.deployments.models import Endpoint
from apps.monitoring import summaries
from apps.monitoring.models import (
    LATENCY_FIELDS,
    DriftReport,
    EndpointMonitoring,
    Heartbeat,
    Outcome,
    PredictionRecord,
    TrafficMinute,
)
from apps.registry.models import ModelVersion

MAX_OUTCOMES_PER_CALL = 5000
MAX_STORED_PREDICTIONS = 10_000  # rows per request kept for joining outcomes


def minute_of(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


@dataclass
class MinuteBatch:
    """What a flush adds to one (endpoint, version, minute) row."""

    endpoint_id: int
    model_version_id: int | None
    minute: dt.datetime
    requests: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_FIELDS))
    features: dict[str, dict] = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int | None, dt.datetime]:
        return (self.endpoint_id, self.model_version_id, self.minute)

    def add_request(self, *, latency_ms: float, rows: int = 0, error_kind: str = "") -> None:
        self.requests += 1
        self.rows += rows
        self.latency_sum_ms += latency_ms
        self.latency_max_ms = max(self.latency_max_ms, latency_ms)
        self.latency_buckets[summaries.latency_bucket(latency_ms)] += 1
        if error_kind:
            self.errors += 1
            self.errors_by_kind[error_kind] = self.errors_by_kind.get(error_kind, 0) + 1


@dataclass
class PredictionToStore:
    endpoint_id: int
    model_version_id: int | None
    request_id: str
    created_at: dt.datetime
    rows: int
    predictions: list
    inputs: Any = None
    inputs_expire_at: dt.datetime | None = None


def _still_existing(batches: dict, predictions: Sequence[PredictionToStore]) -> tuple[dict, list[PredictionToStore]]:
    """Drop what was observed for an endpoint or model version deleted since: written, it would
    break a foreign key and fail every later flush, since a failed flush is kept for the next."""
    endpoint_ids = {key[0] for key in batches} | {p.endpoint_id for p in predictions}
    version_ids = {key[1] for key in batches if key[1]} | {
        p.model_version_id for p in predictions if p.model_version_id
    }
    if not endpoint_ids:
        return batches, list(predictions)
    endpoints = set(Endpoint.objects.filter(pk__in=endpoint_ids).values_list("pk", flat=True))
    versions = (
        set(ModelVersion.objects.filter(pk__in=version_ids).values_list("pk", flat=True)) if version_ids else set()
    )

    def kept(endpoint_id: int, version_id: int | None) -> bool:
        return endpoint_id in endpoints and (version_id is None or version_id in versions)

    return (
        {key: batch for key, batch in batches.items() if kept(key[0], key[1])},
        [p for p in predictions if kept(p.endpoint_id, p.model_version_id)],
    )


def merge_minutes(batches: Iterable[MinuteBatch], predictions: Sequence[PredictionToStore] = ()) -> int:
    """Add the batches to their per-minute rows, and store prediction records, in one transaction.

    Correct under concurrent flushes from several processes: missing rows are inserted first
    (conflicts ignored: another flusher may have inserted the same key), then every row is read
    under a row lock (Postgres; SQLite's IMMEDIATE transactions hold the database write lock)
    and the sums written back. Returns the number of rows touched."""
    batches, predictions = _still_existing(_combine(batches), predictions)
    # Every flusher inserts and locks rows in the same order, so two never wait on each other
    # in a cycle (Postgres would break the deadlock by failing one).
    ordered = sorted(batches.values(), key=lambda b: (b.endpoint_id, b.model_version_id or 0, b.minute))
    with transaction.atomic():
        if batches:
            TrafficMinute.objects.bulk_create(
                [
                    TrafficMinute(endpoint_id=b.endpoint_id, model_version_id=b.model_version_id, minute=b.minute)
                    for b in ordered
                ],
                ignore_conflicts=True,
            )
            wanted = Q()
            for endpoint_id, version_id, minute in batches:
                wanted |= Q(endpoint_id=endpoint_id, model_version_id=version_id, minute=minute)
            rows = list(TrafficMinute.objects.select_for_update().filter(wanted).order_by("pk"))
            for row in rows:
                batch = batches.get((row.endpoint_id, row.model_version_id, row.minute))
                if batch is not None:
                    _add(row, batch)
            TrafficMinute.objects.bulk_update(
                rows,
                [
                    "requests",
                    "errors",
                    "errors_by_kind",
                    "rows",
                    "latency_sum_ms",
                    "latency_max_ms",
                    *LATENCY_FIELDS,
                    "features",
                    "predictions",
                ],
                batch_size=200,
            )
        if predictions:
            PredictionRecord.objects.bulk_create(
                [
                    PredictionRecord(
                        endpoint_id=p.endpoint_id,
                        model_version_id=p.model_version_id,
                        request_id=p.request_id,
                        created_at=p.created_at,
                        rows=p.rows,
                        predictions=p.predictions[:MAX_STORED_PREDICTIONS],
                        inputs=p.inputs,
                        inputs_expire_at=p.inputs_expire_at,
                    )
                    for p in predictions
                ],
                ignore_conflicts=True,
                batch_size=500,
            )
    return len(batches)


def _combine(batches: Iterable[MinuteBatch]) -> dict[tuple, MinuteBatch]:
    combined: dict[tuple, MinuteBatch] = {}
    for batch in batches:
        batch.minute = minute_of(batch.minute)
        existing = combined.get(batch.key)
        if existing is None:
            combined[batch.key] = batch
            continue
        existing.requests += batch.requests
        existing.errors += batch.errors
        for kind, n in batch.errors_by_kind.items():
            existing.errors_by_kind[kind] = existing.errors_by_kind.get(kind, 0) + n
        existing.rows += batch.rows
        existing.latency_sum_ms += batch.latency_sum_ms
        existing.latency_max_ms = max(existing.latency_max_ms, batch.latency_max_ms)
        existing.latency_buckets = [a + b for a, b in zip(existing.latency_buckets, batch.latency_buckets, strict=True)]
        summaries.merge_columns(existing.features, batch.features)
        if batch.predictions:
            summaries.merge_summary(existing.predictions, batch.predictions)
    return combined


def _add(row: TrafficMinute, batch: MinuteBatch) -> None:
    row.requests += batch.requests
    row.errors += batch.errors
    kinds = dict(row.errors_by_kind or {})
    for kind, n in batch.errors_by_kind.items():
        kinds[kind] = kinds.get(kind, 0) + n
    row.errors_by_kind = kinds
    row.rows += batch.rows
    row.latency_sum_ms += batch.latency_sum_ms
    row.latency_max_ms = max(row.latency_max_ms, batch.latency_max_ms)
    for name, count in zip(LATENCY_FIELDS, batch.latency_buckets, strict=True):
        setattr(row, name, getattr(row, name) + count)
    row.features = summaries.merge_columns(dict(row.features or {}), batch.features)
    if batch.predictions:
        row.predictions = summaries.merge_summary(dict(row.predictions or {}), batch.predictions)


def record_minute(
    *,
    endpoint: Endpoint | int,
    minute: dt.datetime,
    model_version=None,
    requests: int = 0,
    errors: int | Mapping[str, int] = 0,
    latencies_ms: Iterable[float] = (),
    rows: int | None = None,
    features: Mapping[str, dict] | None = None,
    predictions: Mapping | None = None,
) -> TrafficMinute:
    """Write telemetry for one minute directly (tests, demo data, imports). `errors` is a count
    (kind "error") or {kind: count}; `latencies_ms` are individual request latencies (when
    fewer than `requests` are given, the rest count as the last latency given, or 10 ms).
    Adds to what the minute already holds."""
    endpoint_id = endpoint if isinstance(endpoint, int) else endpoint.pk
    version_id = model_version if isinstance(model_version, int | None) else model_version.pk
    batch = MinuteBatch(endpoint_id=endpoint_id, model_version_id=version_id, minute=minute_of(minute))
    kinds = dict(errors) if isinstance(errors, Mapping) else ({"error": errors} if errors else {})
    latencies = list(latencies_ms)
    requests = max(requests, len(latencies), sum(kinds.values()))
    filler = latencies[-1] if latencies else 10.0
    latencies += [filler] * (requests - len(latencies))
    for latency in latencies:
        batch.add_request(latency_ms=float(latency))
    batch.errors = sum(kinds.values())
    batch.errors_by_kind = kinds
    batch.rows = requests if rows is None else rows
    batch.features = {name: dict(summary) for name, summary in (features or {}).items()}
    batch.predictions = dict(predictions or {})
    merge_minutes([batch])
    return TrafficMinute.objects.get(endpoint_id=endpoint_id, model_version_id=version_id, minute=batch.minute)


# --- Settings ---------------------------------------------------------------------------------


def can_change_settings(user, endpoint: Endpoint) -> bool:
    return deployment_permissions.can_manage_endpoint(user, endpoint) or deployment_permissions.can_operate_endpoint(
        user, endpoint
    )


def update_settings(
    *,
    endpoint: Endpoint,
    by,
    drift_warn_psi: float,
    drift_alert_psi: float,
    drift_window_hours: int,
    store_payloads: bool,
    payload_retention_days: int,
    reference_version=None,
) -> EndpointMonitoring:
    """Change the endpoint's drift thresholds and payload retention (its owner, team lead,
    operators and admins)."""
    if not can_change_settings(by, endpoint):
        raise PermissionDenied("Only the endpoint's owner, its operators or an admin may change its monitoring.")
    errors = {}
    if not drift_warn_psi >= 0:  # NaN too
        errors["drift_warn_psi"] = "The warning threshold is a PSI of 0 or more."
    if drift_alert_psi < drift_warn_psi:
        errors["drift_alert_psi"] = "The alert threshold must be at least the warning threshold."
    if not 1 <= drift_window_hours <= 24 * 90:
        errors["drift_window_hours"] = "The drift window is between 1 hour and 90 days."
    if not 1 <= payload_retention_days <= 365:
        errors["payload_retention_days"] = "Payloads are kept between 1 and 365 days."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        current, created = EndpointMonitoring.objects.select_for_update().get_or_create(endpoint=endpoint)
        before = None if created else snapshot(current)
        current.drift_warn_psi = drift_warn_psi
        current.drift_alert_psi = drift_alert_psi
        current.drift_window_hours = drift_window_hours
        current.store_payloads = store_payloads
        current.payload_retention_days = payload_retention_days
        current.reference_version = reference_version
        current.save()
        if not store_payloads:
            # Opting out drops what was kept.
            PredictionRecord.objects.filter(endpoint=endpoint, inputs__isnull=False).update(
                inputs=None, inputs_expire_at=None
            )
        audit(
            actor=by,
            action="monitoring.settings_changed",
            target=endpoint,
            before=before,
            after=snapshot(current),
        )
    return current


# --- Outcome feedback ---------------------------------------------------------------------------


@dataclass
class FeedbackResult:
    created: int
    updated: int


def record_outcomes(*, endpoint: Endpoint, by, outcomes: Sequence[Mapping[str, Any]]) -> FeedbackResult:
    """Store ground truth for past predictions: each item {"request_id", "actual", "row"=0}.
    Posting again for the same row replaces the value. Every request id must name a prediction
    of this endpoint, and `row` one of its rows; otherwise nothing is stored (ValidationError
    listing the offending items)."""
    if not deployment_permissions.can_invoke(by, endpoint) and not deployment_permissions.can_operate_endpoint(
        by, endpoint
    ):
        raise PermissionDenied("Posting outcomes needs the right to invoke or operate the endpoint.")
    if len(outcomes) > MAX_OUTCOMES_PER_CALL:
        raise ValidationError(f"At most {MAX_OUTCOMES_PER_CALL} outcomes per call.")
    ids = {str(item["request_id"]) for item in outcomes}
    records = {
        r.request_id: r
        for r in PredictionRecord.objects.filter(endpoint=endpoint, request_id__in=ids).only(
            "request_id", "model_version_id", "created_at", "rows", "predictions"
        )
    }
    problems: dict[str, list[str]] = {}
    rows: dict[tuple[str, int], Outcome] = {}
    now = timezone.now()
    for index, item in enumerate(outcomes):
        request_id, row = str(item["request_id"]), int(item.get("row") or 0)
        record = records.get(request_id)
        if record is None:
            problems[str(index)] = [f"No prediction of {endpoint.name} has the request id {request_id!r}."]
            continue
        if row >= max(record.rows, len(record.predictions or [])):
            problems[str(index)] = [f"The prediction {request_id!r} has {record.rows} row(s); row {row} is not one."]
            continue
        predicted = record.predictions[row] if row < len(record.predictions or []) else None
        rows[(request_id, row)] = Outcome(
            endpoint=endpoint,
            model_version_id=record.model_version_id,
            request_id=request_id,
            row=row,
            actual=item["actual"],
            predicted=predicted,
            predicted_at=record.created_at,
            recorded_at=now,
            recorded_by=by,
        )
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        existing = set(Outcome.objects.filter(endpoint=endpoint, request_id__in=ids).values_list("request_id", "row"))
        Outcome.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["endpoint", "request_id", "row"],
            update_fields=["actual", "recorded_at", "recorded_by"],
            batch_size=500,
        )
        updated = len(existing & set(rows))
        result = FeedbackResult(created=len(rows) - updated, updated=updated)
        audit(
            actor=by,
            action="monitoring.outcomes_recorded",
            target=endpoint,
            after={"created": result.created, "updated": result.updated, "request_ids": sorted(ids)[:20]},
        )
    return result


# --- Housekeeping -------------------------------------------------------------------------------


def purge_expired(now: dt.datetime | None = None) -> dict[str, int]:
    """Drop raw payloads past their endpoint's retention, and prediction records past
    MONITORING_PREDICTION_RETENTION_DAYS (with them, nothing to join outcomes to)."""
    now = now or timezone.now()
    payloads = PredictionRecord.objects.filter(inputs_expire_at__lte=now).update(inputs=None, inputs_expire_at=None)
    keep_days = getattr(settings, "MONITORING_PREDICTION_RETENTION_DAYS", 90)
    deleted, _ = PredictionRecord.objects.filter(created_at__lt=now - dt.timedelta(days=keep_days)).delete()
    return {"payloads_cleared": payloads, "predictions_deleted": deleted}


def beat(*, key: str, detail: str = "") -> None:
    """Record that a periodic task just ran (the ops view's worker health)."""
    Heartbeat.objects.update_or_create(key=key, defaults={"at": timezone.now(), "detail": detail[:255]})


def save_drift_report(**fields) -> DriftReport:
    """Store a drift report computed by drift.compute_report (the job's output)."""
    return DriftReport.objects.create(**fields)
