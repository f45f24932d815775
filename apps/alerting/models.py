"""Alerting: rules watched over live endpoints, the alerts they open, silences that keep them
quiet, and the webhook channels alerts are posted to.

    firing ─acknowledge→ acknowledged ─resolve→ resolved
      └──────────────resolve (by a person, or by the evaluator when it clears)──┘

The workflow lives in services.py; these models hold the data and its invariants. The one that
matters most is in the database: at most one open (firing or acknowledged) alert per rule and
subject, so two evaluations racing can never page people twice.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Team
from apps.deployments.models import Endpoint, Environment


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertRule(models.Model):
    """A condition over one endpoint, or a default over every endpoint of an environment (an
    endpoint's own rule of the same kind takes its place)."""

    class Kind(models.TextChoices):
        ERROR_RATE = "error_rate", "Error rate (%)"
        LATENCY_P95 = "latency_p95", "Latency p95 (ms)"
        TRAFFIC_DROP = "traffic_drop", "Traffic drop (%)"
        DRIFT_SCORE = "drift_score", "Drift score"
        LIVE_METRIC_BELOW = "live_metric_below", "Live metric below"
        JOB_FAILURES = "job_failures", "Failed jobs"

    class Comparison(models.TextChoices):
        GT = ">", "above"
        GTE = ">=", "at or above"
        LT = "<", "below"
        LTE = "<=", "at or below"

    class Baseline(models.TextChoices):
        PREVIOUS = "previous", "the window before"
        LAST_WEEK = "last_week", "the same window a week earlier"

    # The comparison each kind reads naturally with; the form starts from it.
    DEFAULT_COMPARISON = {
        Kind.ERROR_RATE: Comparison.GT,
        Kind.LATENCY_P95: Comparison.GT,
        Kind.TRAFFIC_DROP: Comparison.GTE,
        Kind.DRIFT_SCORE: Comparison.GTE,
        Kind.LIVE_METRIC_BELOW: Comparison.LT,
        Kind.JOB_FAILURES: Comparison.GTE,
    }

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    endpoint = models.ForeignKey(Endpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules")
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    comparison = models.CharField(max_length=2, choices=Comparison.choices)
    threshold = models.FloatField()
    window_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)]
    )
    # live_metric_below: which live metric (e.g. "accuracy", "rmse").
    metric_name = models.CharField(max_length=100, blank=True)
    # job_failures: only jobs of this kind (blank: any kind) that concern the endpoint.
    job_kind = models.CharField(max_length=100, blank=True)
    # traffic_drop: what the current window is compared with.
    baseline = models.CharField(max_length=10, choices=Baseline.choices, default=Baseline.PREVIOUS)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    # Who is paged besides the endpoint's owner; null: the environment's deployer team.
    on_call_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="alert_rules")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["enabled", "kind"], name="alertrule_enabled_idx"),
            models.Index(fields=["endpoint"], name="alertrule_endpoint_idx"),
            models.Index(fields=["environment"], name="alertrule_environment_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(endpoint__isnull=False, environment__isnull=True)
                | Q(endpoint__isnull=True, environment__isnull=False),
                name="alertrule_endpoint_xor_environment",
            ),
            models.CheckConstraint(
                condition=Q(window_minutes__gte=1) & Q(window_minutes__lte=7 * 24 * 60),
                name="alertrule_window_1min_to_7days",
            ),
            models.CheckConstraint(
                condition=~Q(kind="live_metric_below") | ~Q(metric_name=""),
                name="alertrule_live_metric_named",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scope_label(self) -> str:
        return f"endpoint {self.endpoint}" if self.endpoint_id else f"all of {self.environment}"

    @property
    def condition_label(self) -> str:
        what = self.get_kind_display()
        if self.kind == self.Kind.LIVE_METRIC_BELOW:
            what = f"live {self.metric_name}"
        elif self.kind == self.Kind.JOB_FAILURES and self.job_kind:
            what = f"failed {self.job_kind} jobs"
        label = f"{what} {self.get_comparison_display()} {self.threshold:g}"
        if self.kind != self.Kind.DRIFT_SCORE:
            label += f" over {self.window_minutes} min"
        if self.kind == self.Kind.TRAFFIC_DROP:
            label += f" vs {self.get_baseline_display()}"
        return label

    def clean(self) -> None:
        errors = {}
        if bool(self.endpoint_id) == bool(self.environment_id):
            errors["endpoint"] = "A rule watches one endpoint, or every endpoint of one environment."
        if self.kind == self.Kind.LIVE_METRIC_BELOW and not self.metric_name.strip():
            errors["metric_name"] = "Name the live metric to watch."
        if self.kind in (self.Kind.ERROR_RATE, self.Kind.TRAFFIC_DROP) and not 0 <= self.threshold <= 100:
            errors["threshold"] = "A percentage between 0 and 100."
        if self.threshold is not None and self.threshold != self.threshold:  # NaN
            errors["threshold"] = "A number."
        if errors:
            raise ValidationError(errors)


class Silence(models.Model):
    """Keeps notifications for matching alerts quiet until `ends_at`. Matches on every field it
    names: an endpoint, an environment, a rule (at least one)."""

    endpoint = models.ForeignKey(Endpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="silences")
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.CASCADE, related_name="silences"
    )
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="silences")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-ends_at", "-id"]
        indexes = [models.Index(fields=["ends_at"], name="silence_ends_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(endpoint__isnull=False) | Q(environment__isnull=False) | Q(rule__isnull=False),
                name="silence_matches_something",
            ),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="silence_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"Silence #{self.pk} ({self.matcher_label}) until {self.ends_at:%Y-%m-%d %H:%M}"

    @property
    def matcher_label(self) -> str:
        parts = []
        if self.endpoint_id:
            parts.append(f"endpoint {self.endpoint}")
        if self.environment_id:
            parts.append(f"environment {self.environment}")
        if self.rule_id:
            parts.append(f"rule {self.rule}")
        return ", ".join(parts)

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.starts_at <= now < self.ends_at

    def matches(self, rule: AlertRule, endpoint: Endpoint) -> bool:
        return (
            (self.endpoint_id is None or self.endpoint_id == endpoint.pk)
            and (self.environment_id is None or self.environment_id == endpoint.environment_id)
            and (self.rule_id is None or self.rule_id == rule.pk)
        )


class Alert(models.Model):
    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    OPEN_STATES = (State.FIRING, State.ACKNOWLEDGED)

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    endpoint = models.ForeignKey(Endpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    # What the alert is about, as a key unique per rule ("endpoint:12"): the de-duplication key.
    subject_key = models.CharField(max_length=100)
    subject_label = models.CharField(max_length=200)
    state = models.CharField(max_length=12, choices=State.choices, default=State.FIRING)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    summary = models.TextField()
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()
    opened_at = models.DateTimeField(default=timezone.now)
    last_evaluated_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledge_comment = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolve_comment = models.TextField(blank=True)
    # Resolved by the evaluator because the condition cleared (resolved_by stays empty).
    auto_resolved = models.BooleanField(default=False)
    # The silence that kept this alert's notifications quiet, if one did.
    silenced_by = models.ForeignKey(Silence, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["state", "-opened_at"], name="alert_state_opened_idx"),
            models.Index(fields=["endpoint", "state"], name="alert_endpoint_state_idx"),
            models.Index(fields=["rule", "state"], name="alert_rule_state_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject_key"],
                condition=Q(state__in=["firing", "acknowledged"]),
                name="alert_one_open_per_rule_subject",
            ),
            models.CheckConstraint(
                condition=~Q(state="resolved") | Q(resolved_at__isnull=False), name="alert_resolved_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.rule} on {self.subject_label}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class WebhookChannel(models.Model):
    """Where alerts of a team's or an endpoint's are posted."""

    class Format(models.TextChoices):
        JSON = "json", "JSON"
        SLACK = "slack", 'Slack-compatible ({"text": …})'

    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500)
    # Signs the body (HMAC-SHA256, header X-Causeway-Signature) so the receiver can trust it.
    secret = models.CharField(max_length=200, blank=True)
    format = models.CharField(max_length=5, choices=Format.choices, default=Format.JSON)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_webhooks")
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_webhooks"
    )
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(team__isnull=False) | Q(endpoint__isnull=False), name="webhook_for_team_or_endpoint"
            )
        ]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One alert event posted (or being posted) to one channel: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(WebhookChannel, on_delete=models.CASCADE, related_name="deliveries")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=20)  # fired, resolved
    payload = models.JSONField()
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "alert", "event"], name="webhook_delivery_once_per_event")
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="webhook_delivery_status_idx")]

    def __str__(self) -> str:
        return f"{self.event} #{self.alert_id} → {self.channel}"
