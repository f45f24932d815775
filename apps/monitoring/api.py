"""Monitoring's REST API under /api/v1/monitoring/ (token or session auth, like every /api/v1
route): outcome feedback for past predictions, an endpoint's monitoring summary and its drift
reports. An endpoint the caller may not see answers 404."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.monitoring import selectors, services
from apps.monitoring.models import DriftReport


def _endpoint(request, name: str):
    endpoint = selectors.endpoint_for(request.user, name)
    if endpoint is None:
        raise Http404
    return endpoint


class OutcomeSerializer(serializers.Serializer):
    request_id = serializers.RegexField(
        r"^[A-Za-z0-9._-]{1,64}$", help_text="The X-Request-ID the prediction was answered with."
    )
    row = serializers.IntegerField(min_value=0, default=0, help_text="The row of that request (0 for the first).")
    actual = serializers.JSONField(help_text="The ground truth: a label (string, integer, boolean) or a number.")

    def validate_actual(self, value):
        if value is None or isinstance(value, dict | list):
            raise serializers.ValidationError("A single label or number.")
        if isinstance(value, float) and value != value:
            raise serializers.ValidationError("Not a number.")
        return value


class OutcomeBatchSerializer(serializers.Serializer):
    outcomes = OutcomeSerializer(many=True, allow_empty=False, max_length=services.MAX_OUTCOMES_PER_CALL)


class OutcomeResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()


class OutcomeView(APIView):
    @extend_schema(
        operation_id="monitoring_post_outcomes",
        summary="Post ground truth for past predictions",
        description=(
            "Ground-truth labels or values for predictions the endpoint made, named by the request id "
            "it answered them with (`X-Request-ID`) and the row. Posting the same row again replaces its "
            "value. Needs the right to invoke (or operate) the endpoint. Every request id must be one of "
            "the endpoint's predictions, else nothing is stored and the answer is 400 naming the items."
        ),
        request=OutcomeBatchSerializer,
        responses={201: OutcomeResultSerializer, 400: OpenApiResponse(description="Invalid outcomes")},
        tags=["monitoring"],
    )
    def post(self, request, name: str):
        endpoint = _endpoint(request, name)
        serializer = OutcomeBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.record_outcomes(
            endpoint=endpoint, by=request.user, outcomes=serializer.validated_data["outcomes"]
        )
        return Response({"created": result.created, "updated": result.updated}, status=status.HTTP_201_CREATED)


class WindowStatsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)
    latency_p99_ms = serializers.FloatField(allow_null=True)
    rows = serializers.IntegerField()


class DriftReportSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = DriftReport
        fields = [
            "id",
            "computed_at",
            "window_start",
            "window_end",
            "rows",
            "overall_score",
            "verdict",
            "drifted_features",
            "warn_threshold",
            "alert_threshold",
            "note",
        ]


class DriftReportSerializer(DriftReportSummarySerializer):
    class Meta(DriftReportSummarySerializer.Meta):
        fields = [*DriftReportSummarySerializer.Meta.fields, "features", "prediction"]


class MonitoringSummarySerializer(serializers.Serializer):
    endpoint = serializers.CharField()
    range = serializers.CharField()
    stats = WindowStatsSerializer()
    errors_by_kind = serializers.DictField(child=serializers.IntegerField())
    live_metrics = serializers.DictField(child=serializers.FloatField())
    latest_drift = DriftReportSummarySerializer(allow_null=True)


RANGE_PARAMETER = OpenApiParameter(
    "range", str, enum=list(selectors.RANGES), default=selectors.DEFAULT_RANGE, description="The time window."
)


class MonitoringSummaryView(APIView):
    @extend_schema(
        operation_id="monitoring_endpoint_summary",
        summary="An endpoint's traffic, errors, latency, live metrics and latest drift",
        parameters=[RANGE_PARAMETER],
        responses={200: MonitoringSummarySerializer},
        tags=["monitoring"],
    )
    def get(self, request, name: str):
        endpoint = _endpoint(request, name)
        range_key = request.query_params.get("range", selectors.DEFAULT_RANGE)
        if range_key not in selectors.RANGES:
            raise serializers.ValidationError({"range": f"One of {', '.join(selectors.RANGES)}."})
        start, end = selectors.range_bounds(range_key)
        stats = selectors.endpoint_window_stats(endpoint, start=start, end=end)
        data = {
            "endpoint": endpoint.name,
            "range": range_key,
            "stats": WindowStatsSerializer(stats).data,
            "errors_by_kind": selectors.errors_by_kind(endpoint, start=start, end=end),
            "live_metrics": selectors.live_metrics(endpoint, start=start, end=end),
            "latest_drift": None,
        }
        latest = selectors.latest_drift_report(endpoint)
        if latest is not None:
            data["latest_drift"] = DriftReportSummarySerializer(latest).data
        return Response(data)


class DriftReportListView(ListAPIView):
    serializer_class = DriftReportSummarySerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="monitoring_drift_reports",
        summary="An endpoint's drift reports, newest first",
        tags=["monitoring"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DriftReport.objects.none()
        return selectors.drift_reports(_endpoint(self.request, self.kwargs["name"])).defer("features", "prediction")


class DriftReportDetailView(APIView):
    @extend_schema(
        operation_id="monitoring_drift_report",
        summary="One drift report with its per-feature scores",
        responses={200: DriftReportSerializer},
        tags=["monitoring"],
    )
    def get(self, request, name: str, report_id: int):
        report = selectors.drift_report_for(_endpoint(request, name), report_id)
        if report is None:
            raise Http404
        return Response(DriftReportSerializer(report).data)
