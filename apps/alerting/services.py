"""Every write to alerting: rules, the evaluation that opens and auto-resolves alerts, the
people's acknowledge / resolve, silences, webhook channels and their deliveries.

Evaluation (`evaluate_all`, run by beat every minute) measures each enabled rule on each
endpoint it covers (reads only, outside any transaction), then per (rule, endpoint) in one
short transaction: opens an alert when the condition holds and none is open, refreshes the open
one's value when it still holds, and resolves it when the condition has cleared. The database
allows one open alert per (rule, subject): an evaluation that loses a race to open the same
alert finds the winner's row (or hits the constraint and steps back), so nobody is paged twice.

Opening or resolving tells the endpoint's owner and the on-call team (in-app + e-mail after
commit) and posts to matching webhook channels (a job per delivery, sent after commit, retried
with backoff) — unless a silence matches, in which case the alert says which silence kept it
quiet. Nothing a webhook does can fail an evaluation: delivery happens in its own job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from urllib3.exceptions import HTTPError as Urllib3Error

from apps.accounts import services as accounts
from apps.accounts.models import Team, User
from apps.alerting import permissions, selectors, webhook_urls
from apps.alerting.models import (
    SEVERITY_RANK,
    Alert,
    AlertRule,
    Severity,
    Silence,
    WebhookChannel,
    WebhookDelivery,
)
from apps.audit import services as audit
from apps.deployments.models import DeploymentRequest, Endpoint, Environment
from apps.jobs import services as jobs
from apps.jobs.models import Job

logger = logging.getLogger(__name__)

DELIVER_JOB = "alerting.deliver_webhook"
DELIVERY_ATTEMPTS = 4
MAX_TEXT = 5_000
Kind = AlertRule.Kind
State = Alert.State


class TransitionRefused(ValidationError):
    """An alert state change that is not possible from its current state."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def alert_url(alert: Alert) -> str:
    return f"/alerts/{alert.pk}/"


def _absolute(url: str) -> str:
    return f"{getattr(settings, 'SITE_URL', '').rstrip('/')}{url}"


# --- Rules ---------------------------------------------------------------------------------------

RULE_FIELDS = (
    "name",
    "kind",
    "comparison",
    "threshold",
    "window_minutes",
    "metric_name",
    "job_kind",
    "baseline",
    "severity",
    "on_call_team",
    "enabled",
)


def _rule_snapshot(rule: AlertRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "kind": rule.kind,
        "scope": rule.scope_label,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "metric_name": rule.metric_name,
        "job_kind": rule.job_kind,
        "baseline": rule.baseline,
        "severity": rule.severity,
        "enabled": rule.enabled,
        "on_call_team": rule.on_call_team.name if rule.on_call_team_id else None,
    }


def create_rule(
    *,
    by: User,
    name: str,
    kind: str,
    threshold: float,
    endpoint: Endpoint | None = None,
    environment: Environment | None = None,
    comparison: str = "",
    window_minutes: int = 15,
    metric_name: str = "",
    job_kind: str = "",
    baseline: str = AlertRule.Baseline.PREVIOUS,
    severity: str = Severity.WARNING,
    enabled: bool = True,
    on_call_team: Team | None = None,
) -> AlertRule:
    """A rule for one endpoint (its owner, team lead, ops, admins) or a default for every
    endpoint of an environment (ops, admins)."""
    if endpoint is not None and not permissions.can_manage_endpoint_alerting(by, endpoint):
        raise PermissionDenied(f"{by.get_username()} may not set alert rules on {endpoint.name}.")
    if endpoint is None and not permissions.can_manage_environment_alerting(by):
        raise PermissionDenied("Only Operations and platform admins set environment-wide alert rules.")
    rule = AlertRule(
        name=(name or "").strip()[:200],
        kind=kind,
        endpoint=endpoint,
        environment=environment,
        comparison=comparison or AlertRule.DEFAULT_COMPARISON.get(kind, AlertRule.Comparison.GT),
        threshold=threshold,
        window_minutes=window_minutes,
        metric_name=(metric_name or "").strip(),
        job_kind=(job_kind or "").strip(),
        baseline=baseline or AlertRule.Baseline.PREVIOUS,
        severity=severity,
        enabled=enabled,
        on_call_team=on_call_team,
        owner=by,
    )
    if not rule.name:
        rule.name = f"{rule.get_kind_display()} on {rule.scope_label}"[:200]
    rule.full_clean()
    with transaction.atomic():
        rule.save()
        audit.record(actor=by, action="alerting.rule.created", target=rule, after=_rule_snapshot(rule))
    return rule


def update_rule(*, rule: AlertRule, by: User, **changes: Any) -> AlertRule:
    """Change a rule's condition, severity, on-call team or whether it is enabled."""
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown rule fields: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(of=("self",))
            .select_related("endpoint__team", "environment", "on_call_team")
            .get(pk=rule.pk)
        )
        if not permissions.can_edit_rule(by, rule):
            raise PermissionDenied(f"{by.get_username()} may not edit the rule {rule.name}.")
        before = _rule_snapshot(rule)
        for field, value in changes.items():
            setattr(rule, field, value.strip() if isinstance(value, str) and field != "comparison" else value)
        rule.full_clean()
        rule.save()
        audit.record(actor=by, action="alerting.rule.updated", target=rule, before=before, after=_rule_snapshot(rule))
    return rule


# --- Measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """What a rule saw on an endpoint: the value compared with the threshold (None: no data to
    decide on, which neither opens nor resolves an alert) and a sentence saying it."""

    value: float | None
    detail: str = ""


_COMPARE = {
    ">": lambda value, threshold: value > threshold,
    ">=": lambda value, threshold: value >= threshold,
    "<": lambda value, threshold: value < threshold,
    "<=": lambda value, threshold: value <= threshold,
}


def breaches(rule: AlertRule, value: float) -> bool:
    return _COMPARE[rule.comparison](value, rule.threshold)


def measure(rule: AlertRule, endpoint: Endpoint, *, now: datetime) -> Measurement:
    """The rule's value on `endpoint` over its window ending `now`."""
    window = timedelta(minutes=rule.window_minutes)
    start = now - window
    if rule.kind == Kind.JOB_FAILURES:
        return _job_failures(rule, endpoint, start=start, end=now)
    # Telemetry comes from monitoring's selectors (the app to our left).
    from apps.monitoring import selectors as monitoring

    if rule.kind == Kind.ERROR_RATE:
        stats = monitoring.endpoint_window_stats(endpoint, start=start, end=now)
        if not stats.requests or stats.error_rate is None:
            return Measurement(None, "no requests in the window")
        return Measurement(
            round(stats.error_rate * 100, 4),
            f"{stats.errors} of {stats.requests} requests failed in the last {rule.window_minutes} min",
        )
    if rule.kind == Kind.LATENCY_P95:
        stats = monitoring.endpoint_window_stats(endpoint, start=start, end=now)
        if not stats.requests or stats.latency_p95_ms is None:
            return Measurement(None, "no requests in the window")
        return Measurement(
            float(stats.latency_p95_ms),
            f"p95 latency {stats.latency_p95_ms:g} ms over {stats.requests} requests in the last "
            f"{rule.window_minutes} min",
        )
    if rule.kind == Kind.TRAFFIC_DROP:
        current = monitoring.endpoint_window_stats(endpoint, start=start, end=now).requests
        if rule.baseline == AlertRule.Baseline.LAST_WEEK:
            base_end = now - timedelta(days=7)
        else:
            base_end = start
        baseline = monitoring.endpoint_window_stats(endpoint, start=base_end - window, end=base_end).requests
        if not baseline:
            return Measurement(None, "no traffic in the baseline window to compare with")
        drop = max(0.0, (1 - current / baseline) * 100)
        return Measurement(
            round(drop, 2),
            f"{current} requests in the last {rule.window_minutes} min against {baseline} in "
            f"{rule.get_baseline_display()} ({drop:.0f} % drop)",
        )
    if rule.kind == Kind.DRIFT_SCORE:
        report = monitoring.latest_drift_report(endpoint)
        if report is None or report.overall_score is None:
            return Measurement(None, "no drift report yet")
        return Measurement(
            float(report.overall_score),
            f"drift score {report.overall_score:.3f} ({report.verdict}) in the report of "
            f"{timezone.localtime(_report_time(report)):%Y-%m-%d %H:%M}",
        )
    if rule.kind == Kind.LIVE_METRIC_BELOW:
        metrics = monitoring.live_metrics(endpoint, start=start, end=now)
        value = metrics.get(rule.metric_name)
        if value is None:
            return Measurement(None, f"no live {rule.metric_name} in the window")
        return Measurement(float(value), f"live {rule.metric_name} {value:.4g} over the last {rule.window_minutes} min")
    raise ValidationError(f"Unknown rule kind {rule.kind!r}.")


def _report_time(report) -> datetime:
    return getattr(report, "computed_at", None) or report.created_at


def _job_failures(rule: AlertRule, endpoint: Endpoint, *, start: datetime, end: datetime) -> Measurement:
    """Failed jobs that concern the endpoint: those targeting it, and those targeting one of the
    deployment requests for it (checks, deploys)."""
    from django.contrib.contenttypes.models import ContentType

    types = ContentType.objects.get_for_models(Endpoint, DeploymentRequest)
    request_ids = DeploymentRequest.objects.filter(endpoint_name=endpoint.name).values_list("pk", flat=True)
    failed = Job.objects.filter(status=Job.Status.FAILED, finished_at__gte=start, finished_at__lte=end).filter(
        Q(target_type=types[Endpoint], target_id=str(endpoint.pk))
        | Q(target_type=types[DeploymentRequest], target_id__in=[str(pk) for pk in request_ids])
    )
    if rule.job_kind:
        failed = failed.filter(kind=rule.job_kind)
    count = failed.count()
    what = f"{rule.job_kind} jobs" if rule.job_kind else "jobs"
    return Measurement(float(count), f"{count} failed {what} for {endpoint.name} in the last {rule.window_minutes} min")


# --- Evaluation ----------------------------------------------------------------------------------


def subjects_of(rule: AlertRule, overridden: set[tuple[int, str]], endpoints_by_env: dict) -> list[Endpoint]:
    """The live endpoints a rule covers now: its endpoint, or its environment's endpoints that
    have no enabled rule of their own of the same kind."""
    if rule.endpoint_id:
        return [rule.endpoint] if rule.endpoint.state == Endpoint.State.LIVE else []
    return [e for e in endpoints_by_env.get(rule.environment_id, []) if (e.pk, rule.kind) not in overridden]


def evaluate_all(*, now: datetime | None = None) -> dict[str, int]:
    """Evaluate every enabled rule on every endpoint it covers. A rule that cannot be measured
    (a bug, missing telemetry) is logged and skipped; the others still run."""
    now = now or timezone.now()
    rules = selectors.rules_to_evaluate()
    overridden = {(r.endpoint_id, r.kind) for r in rules if r.endpoint_id}
    endpoints_by_env: dict[int, list[Endpoint]] = {}
    for endpoint in selectors.live_endpoints_in({r.environment_id for r in rules if r.environment_id}):
        endpoints_by_env.setdefault(endpoint.environment_id, []).append(endpoint)
    silences = selectors.active_silences(now)
    outcomes: dict[str, int] = {}
    for rule in rules:
        for endpoint in subjects_of(rule, overridden, endpoints_by_env):
            try:
                outcome = evaluate(rule=rule, endpoint=endpoint, now=now, silences=silences)
            except Exception:
                logger.exception("alert rule %s could not be evaluated on %s", rule.pk, endpoint.name)
                outcome = "error"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def evaluate(
    *, rule: AlertRule, endpoint: Endpoint, now: datetime | None = None, silences: Iterable[Silence] | None = None
) -> str:
    """Evaluate one rule on one endpoint; returns what happened: opened, still_firing, resolved,
    clear or no_data."""
    now = now or timezone.now()
    measurement = measure(rule, endpoint, now=now)
    if measurement.value is None:
        return "no_data"
    firing = breaches(rule, measurement.value)
    subject_key = f"endpoint:{endpoint.pk}"
    open_alerts = Alert.objects.filter(rule=rule, subject_key=subject_key, state__in=Alert.OPEN_STATES)
    if not firing and not open_alerts.exists():
        # The common case, answered without a write transaction (SQLite's IMMEDIATE mode would
        # take the database's write lock for every quiet rule otherwise).
        return "clear"
    with transaction.atomic():
        current = (
            Alert.objects.select_for_update(of=("self",))
            .filter(rule=rule, subject_key=subject_key, state__in=Alert.OPEN_STATES)
            .first()
        )
        if current is not None:
            if firing:
                Alert.objects.filter(pk=current.pk).update(value=measurement.value, last_evaluated_at=now)
                return "still_firing"
            _auto_resolve(current, rule, endpoint, measurement, now, silences)
            return "resolved"
        if not firing:
            return "clear"
        alert = Alert(
            rule=rule,
            endpoint=endpoint,
            subject_key=subject_key,
            subject_label=f"{endpoint.name} ({endpoint.environment.name})",
            severity=rule.severity,
            summary=f"{rule.condition_label}: {measurement.detail}."[:MAX_TEXT],
            value=measurement.value,
            threshold=rule.threshold,
            opened_at=now,
            last_evaluated_at=now,
        )
        silence = _matching_silence(rule, endpoint, now, silences)
        alert.silenced_by = silence
        try:
            # A savepoint: on PostgreSQL two evaluations can both find no open alert; the
            # constraint lets one insert and this one steps back without breaking its transaction.
            with transaction.atomic():
                alert.save()
        except IntegrityError:
            return "still_firing"
        audit.record(actor=None, action="alerting.alert.opened", target=alert, after=_alert_snapshot(alert))
        if silence is None:
            _tell(alert, rule, endpoint, "fired")
        return "opened"


def _auto_resolve(alert, rule, endpoint, measurement: Measurement, now, silences) -> None:
    before = _alert_snapshot(alert)
    alert.state = State.RESOLVED
    alert.resolved_at = now
    alert.auto_resolved = True
    alert.value = measurement.value
    alert.last_evaluated_at = now
    alert.resolve_comment = f"Condition cleared: {measurement.detail}."[:MAX_TEXT]
    alert.save()
    audit.record(
        actor=None, action="alerting.alert.auto_resolved", target=alert, before=before, after=_alert_snapshot(alert)
    )
    if alert.silenced_by_id is None and _matching_silence(rule, endpoint, now, silences) is None:
        _tell(alert, rule, endpoint, "resolved")


def _matching_silence(rule, endpoint, now, silences: Iterable[Silence] | None) -> Silence | None:
    candidates = selectors.active_silences(now) if silences is None else silences
    return next((s for s in candidates if s.is_active(now) and s.matches(rule, endpoint)), None)


def _alert_snapshot(alert: Alert) -> dict[str, Any]:
    return {
        "state": alert.state,
        "severity": alert.severity,
        "value": alert.value,
        "threshold": alert.threshold,
        "summary": alert.summary,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by_id else None,
        "resolved_by": alert.resolved_by.get_username() if alert.resolved_by_id else None,
        "auto_resolved": alert.auto_resolved,
        "silenced_by": alert.silenced_by_id,
    }


# --- People acting on alerts -------------------------------------------------------------------


def acknowledge(*, alert: Alert, by: User, comment: str = "") -> Alert:
    """Someone is on it: firing → acknowledged."""
    comment = (comment or "").strip()[:MAX_TEXT]
    with transaction.atomic():
        alert = _locked(alert)
        if not permissions.can_respond(by, alert):
            raise PermissionDenied(f"{by.get_username()} may not acknowledge alert #{alert.pk}.")
        if alert.state != State.FIRING:
            raise TransitionRefused(
                f"Only firing alerts can be acknowledged; alert #{alert.pk} is {alert.get_state_display().lower()}."
            )
        before = _alert_snapshot(alert)
        alert.state = State.ACKNOWLEDGED
        alert.acknowledged_by, alert.acknowledged_at, alert.acknowledge_comment = by, timezone.now(), comment
        alert.save()
        audit.record(
            actor=by,
            action="alerting.alert.acknowledged",
            target=alert,
            before=before,
            after={**_alert_snapshot(alert), "comment": comment},
        )
    return alert


def resolve(*, alert: Alert, by: User, comment: str = "") -> Alert:
    """Close an open alert by hand (firing or acknowledged → resolved). If the condition still
    holds, the next evaluation opens a new alert."""
    comment = (comment or "").strip()[:MAX_TEXT]
    with transaction.atomic():
        alert = _locked(alert)
        if not permissions.can_respond(by, alert):
            raise PermissionDenied(f"{by.get_username()} may not resolve alert #{alert.pk}.")
        if alert.state == State.RESOLVED:
            who = "automatically" if alert.auto_resolved else f"by {alert.resolved_by}"
            raise TransitionRefused(f"Alert #{alert.pk} is already resolved ({who}).")
        before = _alert_snapshot(alert)
        alert.state = State.RESOLVED
        alert.resolved_by, alert.resolved_at, alert.resolve_comment = by, timezone.now(), comment
        alert.save()
        audit.record(
            actor=by,
            action="alerting.alert.resolved",
            target=alert,
            before=before,
            after={**_alert_snapshot(alert), "comment": comment},
        )
        if alert.silenced_by_id is None and alert.endpoint is not None:
            _tell(alert, alert.rule, alert.endpoint, "resolved")
    return alert


def _locked(alert: Alert) -> Alert:
    return (
        Alert.objects.select_for_update(of=("self",))
        .select_related("rule", "endpoint__environment", "endpoint__team", "endpoint__owner")
        .get(pk=alert.pk)
    )


# --- Telling people ------------------------------------------------------------------------------


def recipients(rule: AlertRule, endpoint: Endpoint) -> list[User]:
    """The endpoint's owner and the members of the on-call team."""
    people = {endpoint.owner_id}
    team_id = permissions.on_call_team_id(rule, endpoint)
    if team_id is not None:
        group_id = Team.objects.filter(pk=team_id).values_list("group_id", flat=True).first()
        if group_id is not None:
            people.update(User.objects.filter(groups=group_id).values_list("pk", flat=True))
    return list(User.objects.filter(pk__in=people, is_active=True).order_by("pk"))


def _tell(alert: Alert, rule: AlertRule, endpoint: Endpoint, event: str) -> None:
    """In-app + e-mail to the people, and a delivery per matching webhook channel (sent once the
    transaction commits)."""
    label = alert.get_severity_display().upper()
    if event == "fired":
        title = f"[{label}] {rule.name} on {endpoint.name}"
        body = alert.summary
    else:
        title = f"Resolved: {rule.name} on {endpoint.name}"
        body = alert.resolve_comment or f"Resolved by {alert.resolved_by}."
    accounts.notify(recipients(rule, endpoint), title, body, alert_url(alert), verb=f"alerting.alert.{event}")
    for channel in channels_for(alert, rule, endpoint):
        delivery = WebhookDelivery.objects.create(
            channel=channel, alert=alert, event=event, payload=webhook_payload(alert, rule, endpoint, event, channel)
        )
        jobs.enqueue_job(
            kind=DELIVER_JOB,
            requested_by=None,
            target=alert,
            params={"delivery_id": delivery.pk},
            max_attempts=DELIVERY_ATTEMPTS,
        )


def channels_for(alert: Alert, rule: AlertRule, endpoint: Endpoint) -> list[WebhookChannel]:
    teams = {t for t in (endpoint.team_id, permissions.on_call_team_id(rule, endpoint)) if t is not None}
    channels = WebhookChannel.objects.filter(enabled=True).filter(Q(endpoint=endpoint) | Q(team_id__in=teams))
    rank = SEVERITY_RANK[alert.severity]
    return [c for c in channels.order_by("pk") if SEVERITY_RANK[c.min_severity] <= rank]


def webhook_payload(alert: Alert, rule: AlertRule, endpoint: Endpoint, event: str, channel: WebhookChannel) -> dict:
    url = _absolute(alert_url(alert))
    if channel.format == WebhookChannel.Format.SLACK:
        where = f"{endpoint.name} ({endpoint.environment.name})"
        if event == "fired":
            icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(alert.severity, ":information_source:")
            text = (
                f"{icon} [{alert.severity.upper()}] {rule.name} on {where}: {alert.summary} <{url}|Alert #{alert.pk}>"
            )
        else:
            text = f":white_check_mark: Resolved: {rule.name} on {where}. <{url}|Alert #{alert.pk}>"
        return {"text": text}
    return {
        "event": event,
        "alert": {
            "id": alert.pk,
            "url": url,
            "state": alert.state,
            "severity": alert.severity,
            "summary": alert.summary,
            "value": alert.value,
            "threshold": alert.threshold,
            "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "auto_resolved": alert.auto_resolved,
        },
        "rule": {"id": rule.pk, "name": rule.name, "kind": rule.kind, "comparison": rule.comparison},
        "endpoint": {"name": endpoint.name, "environment": endpoint.environment.name},
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class DeliveryFailed(Exception):
    """The receiver did not take the payload (network error or a non-2xx answer)."""


# At most this much of a receiver's answer is read: a hostile or broken receiver must not make
# the worker hold (or the delivery log keep) an unbounded body.
MAX_RESPONSE_BYTES = 64 * 1024


def _post(url: str, *, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST once (webhook_urls.post: at an approved address, no redirects). Returns (HTTP status
    or None, error or ""); a refused URL is an error starting "Refused: "."""
    try:
        status_code, answer = webhook_urls.post(
            url,
            body=body,
            headers=headers,
            timeout=getattr(settings, "ALERTING_WEBHOOK_TIMEOUT_SECONDS", 5),
            max_response_bytes=MAX_RESPONSE_BYTES,
        )
    except ValidationError as exc:
        return None, ("Refused: " + " ".join(exc.messages))[:1000]
    except (Urllib3Error, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:1000]
    if 200 <= status_code < 300:
        return status_code, ""
    return status_code, f"HTTP {status_code}: {answer.decode('utf-8', errors='replace')[:300]}"


def deliver(*, delivery_id: int, final: bool) -> WebhookDelivery:
    """Post one delivery. On failure it raises DeliveryFailed (the job retries with backoff);
    on the last attempt the delivery is marked failed. Delivered ones are not posted again."""
    delivery = WebhookDelivery.objects.select_related("channel").get(pk=delivery_id)
    if delivery.status == WebhookDelivery.Status.DELIVERED:
        return delivery
    channel = delivery.channel
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Causeway-Alerting/1"}
    if channel.secret:
        headers["X-Causeway-Signature"] = signature(channel.secret, body)
    # Checked again here, not only when the channel was saved: the host's DNS may have changed
    # since, and a forbidden address must not see even one request.
    status_code, error = _post(channel.url, body=body, headers=headers)
    now = timezone.now()
    if not error:
        status = WebhookDelivery.Status.DELIVERED
    else:
        status = WebhookDelivery.Status.FAILED if final else WebhookDelivery.Status.PENDING
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=delivery.attempts + 1,
        status=status,
        response_status=status_code,
        last_error=error,
        delivered_at=now if not error else None,
    )
    delivery.refresh_from_db()
    if error:
        raise DeliveryFailed(error)
    return delivery


# --- Silences ------------------------------------------------------------------------------------


def create_silence(
    *,
    by: User,
    ends_at: datetime,
    reason: str,
    endpoint: Endpoint | None = None,
    environment: Environment | None = None,
    rule: AlertRule | None = None,
    starts_at: datetime | None = None,
) -> Silence:
    """Keep notifications for matching alerts quiet until `ends_at`. An endpoint's people may
    silence it (and its rules); environment-wide silences are for Operations and admins."""
    reason = (reason or "").strip()
    starts_at = starts_at or timezone.now()
    errors = {}
    if endpoint is None and environment is None and rule is None:
        errors["endpoint"] = "Say what to silence: an endpoint, an environment or a rule."
    if not reason:
        errors["reason"] = "Say why these alerts are silenced."
    if ends_at is None or ends_at <= max(starts_at, timezone.now()):
        errors["ends_at"] = "The end must be in the future (and after the start)."
    if errors:
        raise ValidationError(errors)
    scoped_endpoint = endpoint or (rule.endpoint if rule is not None and rule.endpoint_id else None)
    if scoped_endpoint is not None:
        allowed = permissions.can_manage_endpoint_alerting(by, scoped_endpoint)
    else:
        allowed = permissions.can_manage_environment_alerting(by)
    if not allowed:
        raise PermissionDenied(f"{by.get_username()} may not create this silence.")
    with transaction.atomic():
        silence = Silence.objects.create(
            endpoint=endpoint,
            environment=environment,
            rule=rule,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason[:MAX_TEXT],
            created_by=by,
        )
        audit.record(
            actor=by,
            action="alerting.silence.created",
            target=silence,
            after={"matcher": silence.matcher_label, "ends_at": ends_at.isoformat(), "reason": silence.reason},
        )
    return silence


def end_silence(*, silence: Silence, by: User) -> Silence:
    """End a silence now."""
    with transaction.atomic():
        silence = Silence.objects.select_for_update(of=("self",)).select_related("endpoint__team").get(pk=silence.pk)
        if not permissions.can_end_silence(by, silence):
            raise PermissionDenied(f"{by.get_username()} may not end silence #{silence.pk}.")
        now = timezone.now()
        if silence.ends_at <= now:
            raise TransitionRefused(f"Silence #{silence.pk} has already ended.")
        before = {"ends_at": silence.ends_at.isoformat()}
        silence.ends_at = max(now, silence.starts_at + timedelta(microseconds=1))
        silence.ended_by = by
        silence.save(update_fields=["ends_at", "ended_by"])
        audit.record(
            actor=by,
            action="alerting.silence.ended",
            target=silence,
            before=before,
            after={"ends_at": silence.ends_at.isoformat()},
        )
    return silence


# --- Webhook channels ----------------------------------------------------------------------------


def create_channel(
    *,
    by: User,
    name: str,
    url: str,
    format: str = WebhookChannel.Format.JSON,
    secret: str = "",
    team: Team | None = None,
    endpoint: Endpoint | None = None,
    min_severity: str = Severity.INFO,
) -> WebhookChannel:
    """A webhook for a team's alerts (its lead, ops, admins) or an endpoint's (its people)."""
    if team is None and endpoint is None:
        raise ValidationError({"team": "A channel belongs to a team or an endpoint."})
    if endpoint is not None and not permissions.can_manage_endpoint_alerting(by, endpoint):
        raise PermissionDenied(f"{by.get_username()} may not add webhooks to {endpoint.name}.")
    if team is not None and not permissions.can_manage_team_webhooks(by, team):
        raise PermissionDenied(f"{by.get_username()} may not add webhooks for {team.name}.")
    channel = WebhookChannel(
        name=(name or "").strip()[:120],
        url=(url or "").strip(),
        format=format,
        secret=secret or "",
        team=team,
        endpoint=endpoint,
        min_severity=min_severity,
        created_by=by,
    )
    _validate_channel(channel)
    with transaction.atomic():
        channel.save()
        audit.record(
            actor=by,
            action="alerting.webhook.created",
            target=channel,
            after={
                "url": channel.url,
                "format": channel.format,
                "team": str(team or ""),
                "endpoint": str(endpoint or ""),
            },
        )
    return channel


def _validate_channel(channel: WebhookChannel) -> None:
    """The model's own checks plus the URL safety check, reported together by field."""
    errors: dict[str, list[str]] = {}
    try:
        channel.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
    if "url" not in errors:
        try:
            webhook_urls.check_webhook_url(channel.url)
        except ValidationError as exc:
            errors["url"] = exc.messages
    if errors:
        raise ValidationError(errors)


def set_channel_enabled(*, channel: WebhookChannel, by: User, enabled: bool) -> WebhookChannel:
    allowed = (channel.endpoint_id and permissions.can_manage_endpoint_alerting(by, channel.endpoint)) or (
        channel.team_id and permissions.can_manage_team_webhooks(by, channel.team)
    )
    if not allowed:
        raise PermissionDenied(f"{by.get_username()} may not change the webhook {channel.name}.")
    with transaction.atomic():
        before = {"enabled": channel.enabled}
        channel.enabled = enabled
        channel.save(update_fields=["enabled"])
        audit.record(
            actor=by, action="alerting.webhook.updated", target=channel, before=before, after={"enabled": enabled}
        )
    return channel
