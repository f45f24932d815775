"""Monitoring of live endpoints: per-minute traffic aggregates, prediction records keyed by
request id, outcome feedback (ground truth joined to predictions), drift reports and each
endpoint's monitoring settings (drift thresholds, raw payload opt-in and retention).

Aggregates are written by the telemetry flusher (telemetry.py → services.merge_minutes), never
per request. The latency histogram has fixed buckets, one column each, so a window's
percentiles are one SUM query over any number of rows; input feature summaries and the
prediction distribution are JSON (binned with the training profile's bins), merged in Python
by the drift job.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.catalog.models import DatasetVersion
from apps.deployments.models import Endpoint
from apps.registry.models import ModelVersion

# Upper bounds (ms) of the latency buckets; a last, open bucket takes everything slower.
LATENCY_BUCKETS_MS: tuple[float, ...] = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
LATENCY_FIELDS: tuple[str, ...] = tuple(f"latency_b{i:02d}" for i in range(len(LATENCY_BUCKETS_MS) + 1))

DEFAULT_WARN_PSI = 0.1
DEFAULT_ALERT_PSI = 0.25


class Verdict(models.TextChoices):
    OK = "ok", "No drift"
    WARN = "warn", "Warning"
    ALERT = "alert", "Drift"


class EndpointMonitoring(models.Model):
    """What the endpoint's owner chose for its monitoring. Absent: the defaults."""

    endpoint = models.OneToOneField(Endpoint, on_delete=models.CASCADE, related_name="monitoring")
    drift_warn_psi = models.FloatField(default=DEFAULT_WARN_PSI, validators=[MinValueValidator(0)])
    drift_alert_psi = models.FloatField(default=DEFAULT_ALERT_PSI, validators=[MinValueValidator(0)])
    # How far back the drift job looks for current data.
    drift_window_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(24 * 90)]
    )
    # Raw request payloads are personal data more often than not: kept only on opt-in, and
    # purged after the retention period.
    store_payloads = models.BooleanField(default=False)
    payload_retention_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    # The training dataset version compared against; null: found through the serving version's
    # run inputs (the "training" input first).
    reference_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(drift_alert_psi__gte=models.F("drift_warn_psi")), name="monitoring_alert_at_least_warn"
            ),
            models.CheckConstraint(condition=Q(payload_retention_days__gte=1), name="monitoring_retention_positive"),
        ]

    def __str__(self) -> str:
        return f"monitoring of {self.endpoint_id}"


class TrafficMinute(models.Model):
    """One endpoint's traffic to one model version during one minute (or one hour, for old
    history loaded in bulk: `minute` is the start of the period)."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="traffic")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    minute = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    # {"bad_request": 3, "model_error": 1, "unavailable": 2, ...}
    errors_by_kind = models.JSONField(default=dict, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_max_ms = models.FloatField(default=0)
    latency_b00 = models.PositiveIntegerField(default=0)
    latency_b01 = models.PositiveIntegerField(default=0)
    latency_b02 = models.PositiveIntegerField(default=0)
    latency_b03 = models.PositiveIntegerField(default=0)
    latency_b04 = models.PositiveIntegerField(default=0)
    latency_b05 = models.PositiveIntegerField(default=0)
    latency_b06 = models.PositiveIntegerField(default=0)
    latency_b07 = models.PositiveIntegerField(default=0)
    latency_b08 = models.PositiveIntegerField(default=0)
    latency_b09 = models.PositiveIntegerField(default=0)
    latency_b10 = models.PositiveIntegerField(default=0)
    latency_b11 = models.PositiveIntegerField(default=0)
    latency_b12 = models.PositiveIntegerField(default=0)
    latency_b13 = models.PositiveIntegerField(default=0)
    # {feature: {"n": rows, "nulls": n, "bins": [counts], "cats": {value: n}, "sum": x, "sumsq": x}}
    # "bins" follow the reference profile's edges with an underflow and an overflow bin; "cats"
    # counts categories (the reference's top values and others, capped).
    features = models.JSONField(default=dict, blank=True)
    # The same summary for the predictions (numbers binned on a fixed log scale, labels counted).
    predictions = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "model_version", "minute"], name="traffic_minute_unique"),
            models.UniqueConstraint(
                fields=["endpoint", "minute"],
                condition=Q(model_version__isnull=True),
                name="traffic_minute_unique_no_version",
            ),
        ]
        indexes = [models.Index(fields=["endpoint", "minute"], name="traffic_endpoint_minute_idx")]

    def __str__(self) -> str:
        return f"{self.endpoint_id}@{self.minute:%Y-%m-%d %H:%M}"


class PredictionRecord(models.Model):
    """What one request was answered: kept so outcomes posted later can be joined by request id.
    `inputs` only when the endpoint stores payloads, cleared after its retention period."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    request_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    rows = models.PositiveIntegerField(default=0)
    predictions = models.JSONField(default=list, blank=True)
    inputs = models.JSONField(null=True, blank=True)
    inputs_expire_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "request_id"], name="prediction_unique_request"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "created_at"], name="prediction_endpoint_time_idx"),
            models.Index(fields=["inputs_expire_at"], name="prediction_payload_expiry_idx"),
        ]

    def __str__(self) -> str:
        return self.request_id


class Outcome(models.Model):
    """The ground truth for one row of a past prediction. The prediction it is compared with is
    copied on write, so live metrics are one query over this table."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="outcomes")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    request_id = models.CharField(max_length=64)
    row = models.PositiveIntegerField(default=0)
    actual = models.JSONField()
    predicted = models.JSONField(null=True, blank=True)
    predicted_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-predicted_at"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "request_id", "row"], name="outcome_unique_row"),
        ]
        indexes = [models.Index(fields=["endpoint", "predicted_at"], name="outcome_endpoint_time_idx")]

    def __str__(self) -> str:
        return f"{self.request_id}[{self.row}]"


class DriftReport(models.Model):
    """Recent inputs and predictions compared with the training data's profile."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="drift_reports")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reference_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    computed_at = models.DateTimeField(default=timezone.now)
    rows = models.PositiveBigIntegerField(default=0)
    # The highest per-feature PSI: the verdict is this score against the thresholds.
    overall_score = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=5, choices=Verdict.choices, default=Verdict.OK)
    drifted_features = models.PositiveIntegerField(default=0)
    warn_threshold = models.FloatField(default=DEFAULT_WARN_PSI)
    alert_threshold = models.FloatField(default=DEFAULT_ALERT_PSI)
    # [{"name", "kind": "numeric"|"categorical", "psi", "ks"|"js", "ks_pvalue", "verdict",
    #   "reference": {"edges", "counts"} | {"categories": {...}}, "current": {...}, "n", "nulls"}]
    features = models.JSONField(default=list, blank=True)
    prediction = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-computed_at"], name="drift_endpoint_time_idx")]

    def __str__(self) -> str:
        return f"drift {self.endpoint_id} {self.verdict} @ {self.computed_at:%Y-%m-%d %H:%M}"


class Heartbeat(models.Model):
    """The last time a periodic task ran on a worker (`monitoring.flush_telemetry`, every 10 s
    under beat): recent means a worker consumes the queue and beat is sending."""

    key = models.CharField(max_length=100, unique=True)
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.key} @ {self.at:%H:%M:%S}"
