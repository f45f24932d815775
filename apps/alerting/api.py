"""Alerts over Causeway's REST API (/api/v1/alerts): list and read the alerts of endpoints the
caller may see, acknowledge and resolve them. Thin: selectors and services; an alert the caller
may not see answers 404, one they may not act on 403, an impossible move 400."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.alerting import selectors, services
from apps.alerting.models import Alert, Severity


class AlertSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule.name", read_only=True)
    rule_id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(source="rule.kind", read_only=True)
    endpoint = serializers.CharField(source="endpoint.name", read_only=True, allow_null=True)
    environment = serializers.CharField(source="endpoint.environment.name", read_only=True, allow_null=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    silenced = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "rule_id",
            "kind",
            "endpoint",
            "environment",
            "state",
            "severity",
            "summary",
            "value",
            "threshold",
            "opened_at",
            "last_evaluated_at",
            "acknowledged_by",
            "acknowledged_at",
            "acknowledge_comment",
            "resolved_by",
            "resolved_at",
            "resolve_comment",
            "auto_resolved",
            "silenced",
        ]
        read_only_fields = fields

    def get_silenced(self, alert: Alert) -> bool:
        return alert.silenced_by_id is not None


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


_FILTERS = [
    OpenApiParameter("state", str, enum=["open", *Alert.State.values], description="Default: every state."),
    OpenApiParameter("severity", str, enum=Severity.values),
    OpenApiParameter("environment", str, description="An environment's name."),
    OpenApiParameter("endpoint", str, description="An endpoint's name."),
]


@extend_schema_view(list=extend_schema(parameters=_FILTERS), retrieve=extend_schema())
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts of the endpoints the caller may see, newest first."""

    serializer_class = AlertSerializer
    queryset = Alert.objects.none()  # for the schema; get_queryset filters by user

    def get_queryset(self):
        alerts = selectors.with_alert_data(selectors.visible_alerts(self.request.user))
        if self.action != "list":
            return alerts
        params = self.request.query_params
        state = params.get("state")
        if state == "open":
            alerts = alerts.filter(state__in=Alert.OPEN_STATES)
        elif state:
            if state not in Alert.State.values:
                raise ValidationError({"state": f"One of open, {', '.join(Alert.State.values)}."})
            alerts = alerts.filter(state=state)
        severity = params.get("severity")
        if severity:
            if severity not in Severity.values:
                raise ValidationError({"severity": f"One of {', '.join(Severity.values)}."})
            alerts = alerts.filter(severity=severity)
        if params.get("environment"):
            alerts = alerts.filter(endpoint__environment__name=params["environment"])
        if params.get("endpoint"):
            alerts = alerts.filter(endpoint__name=params["endpoint"])
        return alerts.order_by("-opened_at", "-id")

    def get_object(self):
        alert = selectors.alert_for(self.request.user, self.kwargs.get("pk"))
        if alert is None:
            from django.http import Http404

            raise Http404
        return alert

    @extend_schema(request=CommentSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Firing → acknowledged (the endpoint's owner, on-call team, Operations, admins)."""
        alert = self.get_object()  # hidden: 404 before anything else is looked at
        comment = _comment(request)
        return Response(AlertSerializer(services.acknowledge(alert=alert, by=request.user, comment=comment)).data)

    @extend_schema(request=CommentSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Firing or acknowledged → resolved."""
        alert = self.get_object()  # hidden: 404 before anything else is looked at
        comment = _comment(request)
        return Response(AlertSerializer(services.resolve(alert=alert, by=request.user, comment=comment)).data)


def _comment(request) -> str:
    serializer = CommentSerializer(data=request.data if isinstance(request.data, dict) else {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data.get("comment", "")
