"""Demo alerting: default rules for the demo environments (created by Operations), a live
accuracy rule on the churn endpoint (by its owner), and — evaluated against the drift report
the monitoring demo leaves on its drifting endpoint — one open, firing drift alert. Everything
goes through the services, so the audit trail and the notifications read as they would in use.
Idempotent: rules are created once per environment / endpoint, and an open alert is kept
(the database allows one open alert per rule and endpoint).
"""

from __future__ import annotations

import logging

from django.utils import timezone

from apps.alerting import services
from apps.alerting.models import AlertRule
from apps.deployments.models import Endpoint, Environment

logger = logging.getLogger(__name__)

Kind = AlertRule.Kind

# (name, kind, threshold, window minutes, severity, extra fields)
PRODUCTION_DEFAULTS = [
    ("Error rate above 5 %", Kind.ERROR_RATE, 5.0, 15, "critical", {}),
    ("Latency p95 above 500 ms", Kind.LATENCY_P95, 500.0, 15, "warning", {}),
    ("Traffic dropped by 80 %", Kind.TRAFFIC_DROP, 80.0, 60, "warning", {"baseline": "previous"}),
    ("Drift score at alert level", Kind.DRIFT_SCORE, 0.25, 60, "warning", {}),
    ("Failed jobs", Kind.JOB_FAILURES, 1.0, 60, "critical", {}),
]
STAGING_DEFAULTS = [
    ("Error rate above 10 %", Kind.ERROR_RATE, 10.0, 15, "warning", {}),
    ("Failed jobs", Kind.JOB_FAILURES, 1.0, 60, "info", {}),
]
DEMO_DRIFT_ENDPOINT = "churn-propensity"


def load(context: dict) -> None:
    users = context["users"]
    ops = users["ops"]
    environments = context.get("environments") or {e.name: e for e in Environment.objects.all()}
    rules: dict[str, list[AlertRule]] = {}
    for name, defaults in (("production", PRODUCTION_DEFAULTS), ("staging", STAGING_DEFAULTS)):
        environment = environments.get(name)
        if environment is not None:
            rules[name] = _defaults(environment, defaults, by=ops)

    endpoint = _drift_endpoint(context)
    if endpoint is None:
        return
    if not AlertRule.objects.filter(endpoint=endpoint).exists():
        services.create_rule(
            by=endpoint.owner,
            endpoint=endpoint,
            name="Live accuracy below 0.70",
            kind=Kind.LIVE_METRIC_BELOW,
            metric_name="accuracy",
            threshold=0.70,
            window_minutes=24 * 60,
            severity="warning",
        )
    drift_rule = next(
        (r for r in AlertRule.objects.filter(kind=Kind.DRIFT_SCORE, environment_id=endpoint.environment_id)), None
    )
    if drift_rule is None:
        return
    outcome = services.evaluate(rule=drift_rule, endpoint=endpoint, now=timezone.now())
    context["demo_alert_outcome"] = outcome
    if outcome not in ("opened", "still_firing"):
        # Only when monitoring's demo left no alert-level drift report: nothing is invented.
        logger.warning("demo: the drift rule on %s did not fire (%s)", endpoint.name, outcome)


def _defaults(environment: Environment, defaults, *, by) -> list[AlertRule]:
    existing = {r.name: r for r in AlertRule.objects.filter(environment=environment)}
    created = []
    for name, kind, threshold, window, severity, extra in defaults:
        if name in existing:
            created.append(existing[name])
            continue
        created.append(
            services.create_rule(
                by=by,
                environment=environment,
                name=name,
                kind=kind,
                threshold=threshold,
                window_minutes=window,
                severity=severity,
                **extra,
            )
        )
    return created


def _drift_endpoint(context: dict) -> Endpoint | None:
    """The endpoint monitoring's demo makes drift: named in the context when it says so, else
    the live endpoint whose latest drift report scores highest, else the demo's live endpoint."""
    named = context.get("drift_endpoint") or context.get("drifting_endpoint")
    if isinstance(named, Endpoint):
        return named
    if isinstance(named, str):
        return Endpoint.objects.filter(name=named).select_related("environment", "owner").first()
    try:
        from apps.monitoring.models import DriftReport

        worst = (
            DriftReport.objects.filter(endpoint__state=Endpoint.State.LIVE, overall_score__isnull=False)
            .order_by("-overall_score", "-computed_at")
            .values_list("endpoint_id", flat=True)
            .first()
        )
    except ImportError:  # monitoring not installed
        worst = None
    endpoints = Endpoint.objects.select_related("environment", "owner")
    if worst is not None:
        return endpoints.get(pk=worst)
    return endpoints.filter(name=DEMO_DRIFT_ENDPOINT, state=Endpoint.State.LIVE).first()
