"""Every read of alerting, permission-filtered: an alert, rule or silence is visible to whoever
may see its endpoint (deployments' `visible_endpoints`, one subquery); environment-wide rules
and silences are visible to every signed-in user, like environments themselves."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case, Count, Q, QuerySet, Value, When
from django.utils import timezone

from apps.accounts.selectors import cached_team_ids
from apps.alerting.models import Alert, AlertRule, Silence, WebhookChannel, WebhookDelivery
from apps.deployments import selectors as deployments
from apps.deployments.models import Endpoint


def _visible_endpoint_ids(user) -> QuerySet:
    return deployments.visible_endpoints(user).values("pk")


def visible_alerts(user) -> QuerySet[Alert]:
    """Alerts of endpoints `user` may see, and those they are paged for as a member of the
    on-call team (the rule's, or else the environment's deployer team)."""
    if not user.is_authenticated:
        return Alert.objects.none()
    teams = cached_team_ids(user)
    on_call = Q(rule__on_call_team_id__in=teams) | Q(
        rule__on_call_team__isnull=True, endpoint__environment__deployer_team_id__in=teams
    )
    return (
        Alert.objects.filter(Q(endpoint_id__in=_visible_endpoint_ids(user)) | on_call)
        if teams
        else (Alert.objects.filter(endpoint_id__in=_visible_endpoint_ids(user)))
    )


def with_alert_data(alerts: QuerySet[Alert]) -> QuerySet[Alert]:
    return alerts.select_related("rule", "endpoint__environment", "acknowledged_by", "resolved_by", "silenced_by")


def alert_for(user, pk) -> Alert | None:
    if not str(pk).isdigit():
        return None
    return (
        with_alert_data(visible_alerts(user))
        .select_related("endpoint__owner", "endpoint__team", "rule__on_call_team")
        .filter(pk=int(pk))
        .first()
    )


def open_alerts(user) -> QuerySet[Alert]:
    """Open alerts `user` may see: firing before acknowledged, most severe, then newest first."""
    firing_first = Case(When(state=Alert.State.FIRING, then=Value(0)), default=Value(1))
    severest_first = Case(
        When(severity="critical", then=Value(0)), When(severity="warning", then=Value(1)), default=Value(2)
    )
    return (
        with_alert_data(visible_alerts(user))
        .filter(state__in=Alert.OPEN_STATES)
        .order_by(firing_first, severest_first, "-opened_at", "-id")
    )


def open_alert_counts(user) -> dict[str, int]:
    """Open alerts per severity, in one query."""
    rows = visible_alerts(user).filter(state__in=Alert.OPEN_STATES).values("severity").annotate(n=Count("pk"))
    counts = {"info": 0, "warning": 0, "critical": 0}
    counts.update({row["severity"]: row["n"] for row in rows})
    return counts


def endpoint_for(user, name: str) -> Endpoint | None:
    return deployments.endpoint_for(user, name)


def visible_rules(user) -> QuerySet[AlertRule]:
    if not user.is_authenticated:
        return AlertRule.objects.none()
    return AlertRule.objects.filter(
        Q(endpoint_id__in=_visible_endpoint_ids(user)) | Q(environment__isnull=False)
    ).select_related("endpoint__environment", "endpoint__team", "environment", "owner", "on_call_team")


def rule_for(user, pk) -> AlertRule | None:
    if not str(pk).isdigit():
        return None
    return visible_rules(user).filter(pk=int(pk)).first()


def visible_silences(user) -> QuerySet[Silence]:
    if not user.is_authenticated:
        return Silence.objects.none()
    return Silence.objects.filter(
        Q(endpoint_id__in=_visible_endpoint_ids(user)) | Q(endpoint__isnull=True)
    ).select_related("endpoint__team", "environment", "rule", "created_by", "ended_by")


def silence_for(user, pk) -> Silence | None:
    if not str(pk).isdigit():
        return None
    return visible_silences(user).filter(pk=int(pk)).first()


def active_silences(now: datetime | None = None) -> list[Silence]:
    """Silences in force now (a handful at most: read once per evaluation)."""
    now = now or timezone.now()
    return list(Silence.objects.filter(starts_at__lte=now, ends_at__gt=now).order_by("ends_at", "pk"))


def rules_to_evaluate() -> list[AlertRule]:
    return list(
        AlertRule.objects.filter(enabled=True).select_related("endpoint__environment", "environment").order_by("pk")
    )


def live_endpoints_in(environment_ids) -> QuerySet[Endpoint]:
    return Endpoint.objects.filter(environment_id__in=environment_ids, state=Endpoint.State.LIVE).select_related(
        "environment"
    )


def visible_channels(user) -> QuerySet[WebhookChannel]:
    from apps.deployments.permissions import is_admin, is_ops, team_ids

    if not user.is_authenticated:
        return WebhookChannel.objects.none()
    channels = WebhookChannel.objects.select_related("team", "endpoint", "created_by")
    if is_admin(user) or is_ops(user):
        return channels
    return channels.filter(Q(team_id__in=team_ids(user)) | Q(endpoint_id__in=_visible_endpoint_ids(user)))


def deliveries_of(alert: Alert) -> QuerySet[WebhookDelivery]:
    return alert.deliveries.select_related("channel").order_by("created_at", "pk")


# --- Audit history visibility (registered in AlertingConfig.ready) -------------------------------


def can_view_alert_id(user, object_id: str) -> bool:
    return str(object_id).isdigit() and visible_alerts(user).filter(pk=int(object_id)).exists()


def can_view_rule_id(user, object_id: str) -> bool:
    return str(object_id).isdigit() and visible_rules(user).filter(pk=int(object_id)).exists()


def can_view_silence_id(user, object_id: str) -> bool:
    return str(object_id).isdigit() and visible_silences(user).filter(pk=int(object_id)).exists()
