"""Every read of monitoring data. Monitoring data of an endpoint is visible to whoever may see
the endpoint (deployments' visible_endpoints); the functions taking an endpoint expect the caller
to have checked that (views and APIs fetch it with `endpoint_for`).

Public interface for the apps to the right (alerting, value, dashboards):
`endpoint_window_stats`, `latest_drift_report`, `live_metrics`, `predictions_served`,
`predictions_served_by_day`, `health_summary`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate, TruncDay, TruncHour, TruncMinute
from django.utils import timezone

from apps.deployments.models import Endpoint
from apps.deployments.selectors import endpoint_for as deployments_endpoint_for
from apps.deployments.selectors import visible_endpoints
from apps.monitoring import summaries
from apps.monitoring.models import (
    LATENCY_FIELDS,
    DriftReport,
    EndpointMonitoring,
    Outcome,
    PredictionRecord,
    TrafficMinute,
    Verdict,
)

RANGES: dict[str, dt.timedelta] = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
DEFAULT_RANGE = "24h"


@dataclass(frozen=True)
class WindowStats:
    requests: int
    errors: int
    error_rate: float | None  # 0..1; None without requests
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    rows: int


def _endpoint_id(endpoint: Endpoint | int) -> int:
    return endpoint if isinstance(endpoint, int) else endpoint.pk


def monitored_endpoints(user) -> QuerySet[Endpoint]:
    """The endpoints whose monitoring `user` may see."""
    return visible_endpoints(user)


def endpoint_for(user, name: str) -> Endpoint | None:
    """The endpoint called `name` if `user` may see it (its monitoring with it)."""
    return deployments_endpoint_for(user, name)


def _window(endpoint: Endpoint | int, start: dt.datetime, end: dt.datetime) -> QuerySet[TrafficMinute]:
    return TrafficMinute.objects.filter(endpoint_id=_endpoint_id(endpoint), minute__gte=start, minute__lt=end)


def _stats_from(row: dict) -> WindowStats:
    requests = row.get("requests") or 0
    errors = row.get("errors") or 0
    buckets = [row.get(name) or 0 for name in LATENCY_FIELDS]
    return WindowStats(
        requests=requests,
        errors=errors,
        error_rate=(errors / requests) if requests else None,
        latency_p50_ms=summaries.percentile_from_buckets(buckets, 0.50),
        latency_p95_ms=summaries.percentile_from_buckets(buckets, 0.95),
        latency_p99_ms=summaries.percentile_from_buckets(buckets, 0.99),
        rows=row.get("rows") or 0,
    )


_SUMS = {"requests": Sum("requests"), "errors": Sum("errors"), "rows": Sum("rows")} | {
    name: Sum(name) for name in LATENCY_FIELDS
}


def endpoint_window_stats(endpoint: Endpoint | int, *, start: dt.datetime, end: dt.datetime) -> WindowStats:
    """Requests, errors and latency percentiles of [start, end) (minutes starting in it), over
    every version the endpoint served. One query."""
    return _stats_from(_window(endpoint, start, end).aggregate(**_SUMS))


def window_stats_by_endpoint(
    endpoint_ids: Iterable[int], *, start: dt.datetime, end: dt.datetime
) -> dict[int, WindowStats]:
    """endpoint_window_stats for many endpoints in one query (missing ones: no traffic)."""
    ids = list(endpoint_ids)
    rows = (
        TrafficMinute.objects.filter(endpoint_id__in=ids, minute__gte=start, minute__lt=end)
        .values("endpoint_id")
        .annotate(**_SUMS)
        .order_by()
    )
    found = {row["endpoint_id"]: _stats_from(row) for row in rows}
    return {pk: found.get(pk) or _stats_from({}) for pk in ids}


def window_stats_by_version(endpoint: Endpoint | int, *, start: dt.datetime, end: dt.datetime) -> dict:
    """{model_version_id: WindowStats} over [start, end): a canary beside the primary."""
    rows = _window(endpoint, start, end).values("model_version_id").annotate(**_SUMS).order_by()
    return {row["model_version_id"]: _stats_from(row) for row in rows}


def errors_by_kind(endpoint: Endpoint | int, *, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for kinds in _window(endpoint, start, end).filter(errors__gt=0).values_list("errors_by_kind", flat=True):
        for kind, n in (kinds or {}).items():
            totals[kind] += n
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def latest_drift_report(endpoint: Endpoint | int) -> DriftReport | None:
    return DriftReport.objects.filter(endpoint_id=_endpoint_id(endpoint)).order_by("-computed_at", "-id").first()


def drift_reports(endpoint: Endpoint | int, *, start: dt.datetime | None = None) -> QuerySet[DriftReport]:
    reports = DriftReport.objects.filter(endpoint_id=_endpoint_id(endpoint))
    if start is not None:
        reports = reports.filter(computed_at__gte=start)
    return reports.order_by("-computed_at", "-id")


def drift_report_for(endpoint: Endpoint, report_id) -> DriftReport | None:
    if not str(report_id).isdigit():
        return None
    return (
        DriftReport.objects.filter(endpoint=endpoint, pk=int(report_id))
        .select_related("model_version__registered_model", "reference_version__dataset")
        .first()
    )


def latest_verdicts(endpoint_ids: Iterable[int]) -> dict[int, DriftReport]:
    """The newest drift report of each endpoint, in one query."""
    newest = (
        DriftReport.objects.filter(endpoint_id=OuterRef("endpoint_id")).order_by("-computed_at", "-id").values("pk")[:1]
    )
    reports = DriftReport.objects.filter(endpoint_id__in=list(endpoint_ids), pk=Subquery(newest)).defer(
        "features", "prediction"
    )
    return {report.endpoint_id: report for report in reports}


def monitoring_settings(endpoint: Endpoint) -> EndpointMonitoring:
    return EndpointMonitoring.objects.filter(endpoint=endpoint).first() or EndpointMonitoring(endpoint=endpoint)


# --- Outcomes and live metrics -------------------------------------------------------------------


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_label(value) -> bool:
    return isinstance(value, str | bool) or (isinstance(value, int) and not isinstance(value, bool))


def metrics_of(pairs: Iterable[tuple]) -> dict[str, float]:
    """Live metrics of (actual, predicted) pairs: classification when every actual is a label
    (string, boolean, integer) → accuracy; regression otherwise → rmse and mae. `labelled` is
    the number of pairs used."""
    pairs = [(a, p) for a, p in pairs if a is not None and p is not None]
    if not pairs:
        return {}
    if all(_is_label(a) for a, _ in pairs):
        right = sum(1 for a, p in pairs if _same_label(a, p))
        return {"accuracy": right / len(pairs), "labelled": float(len(pairs))}
    numeric = [(float(a), float(p)) for a, p in pairs if _is_number(a) and _is_number(p)]
    if not numeric:
        return {}
    squared = sum((a - p) ** 2 for a, p in numeric)
    absolute = sum(abs(a - p) for a, p in numeric)
    return {
        "rmse": math.sqrt(squared / len(numeric)),
        "mae": absolute / len(numeric),
        "labelled": float(len(numeric)),
    }


def _same_label(actual, predicted) -> bool:
    if isinstance(predicted, float) and predicted.is_integer():
        predicted = int(predicted)
    if isinstance(actual, bool) or isinstance(predicted, bool):
        return bool(actual) == bool(predicted) if _is_label(predicted) or _is_number(predicted) else False
    return str(actual) == str(predicted)


def live_metrics(endpoint: Endpoint | int, *, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    """Accuracy (labels) or RMSE/MAE (numbers) of the predictions made in [start, end) that have
    an outcome, e.g. {"accuracy": 0.91, "labelled": 120.0}. Empty when none has one."""
    pairs = Outcome.objects.filter(
        endpoint_id=_endpoint_id(endpoint), predicted_at__gte=start, predicted_at__lt=end
    ).values_list("actual", "predicted")
    return metrics_of(pairs)


def live_metric_series(endpoint: Endpoint | int, *, start: dt.datetime, end: dt.datetime, step: str) -> list[dict]:
    """[{"at": bucket start, **metrics}] per step (minute/hour/day) of prediction time."""
    trunc = _TRUNC[step]
    buckets: dict[dt.datetime, list] = defaultdict(list)
    for at, actual, predicted in (
        Outcome.objects.filter(endpoint_id=_endpoint_id(endpoint), predicted_at__gte=start, predicted_at__lt=end)
        .annotate(at=trunc("predicted_at"))
        .values_list("at", "actual", "predicted")
    ):
        buckets[at].append((actual, predicted))
    return [{"at": at, **metrics_of(pairs)} for at, pairs in sorted(buckets.items())]


def prediction_for(endpoint: Endpoint, request_id: str) -> PredictionRecord | None:
    return PredictionRecord.objects.filter(endpoint=endpoint, request_id=request_id).first()


# --- Predictions served (value) --------------------------------------------------------------------


def predictions_served(endpoint: Endpoint | int, *, start: dt.datetime, end: dt.datetime) -> int:
    """Rows scored by the endpoint in [start, end) (a request scoring 10 rows serves 10
    predictions), successful requests and failed ones alike."""
    return _window(endpoint, start, end).aggregate(n=Coalesce(Sum("rows"), 0))["n"]


def predictions_served_by_day(
    endpoints: Iterable[Endpoint | int], *, start: dt.datetime, end: dt.datetime
) -> dict[tuple[int, dt.date], int]:
    """{(endpoint id, UTC day): rows scored} over [start, end), in one query; days without
    traffic are absent."""
    ids = [_endpoint_id(e) for e in endpoints]
    rows = (
        TrafficMinute.objects.filter(endpoint_id__in=ids, minute__gte=start, minute__lt=end)
        .annotate(day=TruncDate("minute", tzinfo=dt.UTC))
        .values("endpoint_id", "day")
        .annotate(n=Sum("rows"))
        .order_by()
    )
    return {(row["endpoint_id"], row["day"]): row["n"] or 0 for row in rows}


# --- Series for charts -------------------------------------------------------------------------------

_TRUNC = {"minute": TruncMinute, "hour": TruncHour, "day": TruncDay}


def step_for(range_key: str) -> str:
    return {"1h": "minute", "24h": "hour", "7d": "hour", "30d": "day"}.get(range_key, "hour")


def range_bounds(range_key: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    now = now or timezone.now()
    return now - RANGES.get(range_key, RANGES[DEFAULT_RANGE]), now


def traffic_series(endpoint: Endpoint | int, *, start: dt.datetime, end: dt.datetime, step: str) -> list[dict]:
    """[{"at", "requests", "errors", "error_rate", "p50", "p95", "p99", "rows"}] per step."""
    trunc = _TRUNC[step]
    rows = (
        _window(endpoint, start, end)
        .annotate(at=trunc("minute", tzinfo=dt.UTC))
        .values("at")
        .annotate(**_SUMS)
        .order_by("at")
    )
    series = []
    for row in rows:
        stats = _stats_from(row)
        series.append(
            {
                "at": row["at"],
                "requests": stats.requests,
                "errors": stats.errors,
                "error_rate": stats.error_rate,
                "p50": stats.latency_p50_ms,
                "p95": stats.latency_p95_ms,
                "p99": stats.latency_p99_ms,
                "rows": stats.rows,
            }
        )
    return series


def traffic_by_version_series(endpoint: Endpoint | int, *, start: dt.datetime, end: dt.datetime, step: str) -> dict:
    """{version id: [(at, requests)]}: the canary's share of traffic over time."""
    trunc = _TRUNC[step]
    rows = (
        _window(endpoint, start, end)
        .annotate(at=trunc("minute", tzinfo=dt.UTC))
        .values("model_version_id", "at")
        .annotate(n=Sum("requests"))
        .order_by("at")
    )
    out: dict = defaultdict(list)
    for row in rows:
        out[row["model_version_id"]].append((row["at"], row["n"]))
    return dict(out)


def sparklines(endpoint_ids: Iterable[int], *, start: dt.datetime, end: dt.datetime, step: str = "hour") -> dict:
    """{endpoint id: [{"at", "requests", "errors", "p95", ...}]} for many endpoints, one query."""
    ids = list(endpoint_ids)
    trunc = _TRUNC[step]
    rows = (
        TrafficMinute.objects.filter(endpoint_id__in=ids, minute__gte=start, minute__lt=end)
        .annotate(at=trunc("minute", tzinfo=dt.UTC))
        .values("endpoint_id", "at")
        .annotate(**_SUMS)
        .order_by("endpoint_id", "at")
    )
    out: dict[int, list] = {pk: [] for pk in ids}
    for row in rows:
        stats = _stats_from(row)
        out[row["endpoint_id"]].append(
            {"at": row["at"], "requests": stats.requests, "error_rate": stats.error_rate, "p95": stats.latency_p95_ms}
        )
    return out


def drift_score_series(endpoint_ids: Iterable[int], *, start: dt.datetime) -> dict[int, list]:
    """{endpoint id: [(computed_at, overall_score)]} oldest first, one query."""
    out: dict[int, list] = defaultdict(list)
    for endpoint_id, at, score in (
        DriftReport.objects.filter(endpoint_id__in=list(endpoint_ids), computed_at__gte=start)
        .order_by("computed_at")
        .values_list("endpoint_id", "computed_at", "overall_score")
    ):
        out[endpoint_id].append((at, score))
    return dict(out)


# --- Health ---------------------------------------------------------------------------------------

HEALTH_ORDER = {"down": 0, "alert": 1, "warn": 2, "ok": 3, "idle": 4, "retired": 5}


@dataclass(frozen=True)
class EndpointHealth:
    endpoint_id: int
    name: str
    status: str  # ok, warn, alert, idle, retired
    reason: str
    stats: WindowStats
    drift_verdict: str | None


def health_of(endpoint: Endpoint, stats: WindowStats, drift: DriftReport | None) -> EndpointHealth:
    """A one-word health: retired; idle (no traffic in the window); alert (≥ 5 % errors or drift
    alert); warn (≥ 1 % errors, p95 over a second or a drift warning); ok."""
    verdict = drift.verdict if drift else None
    if endpoint.state != Endpoint.State.LIVE:
        return EndpointHealth(endpoint.pk, endpoint.name, "retired", "Retired", stats, verdict)
    reasons: list[str] = []
    status = "ok"
    if stats.error_rate is not None and stats.error_rate >= 0.05:
        status = "alert"
        reasons.append(f"{stats.error_rate:.1%} errors")
    elif stats.error_rate is not None and stats.error_rate >= 0.01:
        status = "warn"
        reasons.append(f"{stats.error_rate:.1%} errors")
    if stats.latency_p95_ms is not None and stats.latency_p95_ms >= 1000:
        status = "alert" if status == "alert" else "warn"
        reasons.append(f"p95 {stats.latency_p95_ms:.0f} ms")
    if verdict == Verdict.ALERT:
        status = "alert"
        reasons.append("drift")
    elif verdict == Verdict.WARN and status == "ok":
        status = "warn"
        reasons.append("drift warning")
    if not stats.requests and status == "ok":
        status = "idle"
        reasons.append("no traffic")
    return EndpointHealth(endpoint.pk, endpoint.name, status, ", ".join(reasons) or "Healthy", stats, verdict)


def health_summary(user, *, window: dt.timedelta = dt.timedelta(hours=1), limit: int = 8) -> dict:
    """The endpoint health card: counts per status and the worst endpoints first. Three
    queries whatever the number of endpoints."""
    end = timezone.now()
    endpoints = list(monitored_endpoints(user).only("pk", "name", "state").order_by("name"))
    ids = [e.pk for e in endpoints]
    stats = window_stats_by_endpoint(ids, start=end - window, end=end)
    drift = latest_verdicts(ids)
    health = [health_of(e, stats[e.pk], drift.get(e.pk)) for e in endpoints]
    counts = {status: 0 for status in HEALTH_ORDER}
    for item in health:
        counts[item.status] += 1
    worst = sorted(health, key=lambda h: (HEALTH_ORDER[h.status], h.name))
    return {"counts": counts, "endpoints": worst[:limit], "total": len(health)}


def recent_revisions(user, *, limit: int = 10):
    """Recent deployments and rollbacks of endpoints `user` may see (one query)."""
    from apps.deployments.models import EndpointRevision

    return (
        EndpointRevision.objects.filter(endpoint__in=monitored_endpoints(user).values("pk"))
        .select_related("endpoint", "model_version__registered_model", "request__deployed_by")
        .order_by("-started_at", "-id")[:limit]
    )


def prediction_counts(endpoint: Endpoint) -> dict[str, int]:
    return PredictionRecord.objects.filter(endpoint=endpoint).aggregate(
        records=Count("pk"), rows=Coalesce(Sum("rows"), 0, output_field=IntegerField())
    )


def version_labels(version_ids: Iterable[int | None]) -> dict:
    """{version id: "model vN"} in one query (None: "unknown version")."""
    from apps.registry.models import ModelVersion

    ids = [pk for pk in version_ids if pk is not None]
    labels: dict = {None: "unknown version"}
    for pk, name, number in ModelVersion.objects.filter(pk__in=ids).values_list(
        "pk", "registered_model__name", "version"
    ):
        labels[pk] = f"{name} v{number}"
    return labels


def offline_metrics(version_id: int | None) -> dict[str, float]:
    """The model card's overall metrics (rows without a slice) of a version: {name: value}."""
    from apps.registry.models import ModelCard

    if version_id is None:
        return {}
    rows = ModelCard.objects.filter(model_version_id=version_id).values_list("metrics", flat=True).first() or []
    return {
        str(row["name"]): float(row["value"])
        for row in rows
        if isinstance(row, dict)
        and row.get("name")
        and not row.get("slice")
        and isinstance(row.get("value"), int | float)
        and not isinstance(row.get("value"), bool)
    }
