"""Value REST API (/api/v1/use-cases…): read use cases with their ROI figures, read and create
cost and value entries. Same visibility as the pages: a hidden use case answers 404, one that
may be seen but not changed 403 on writes. Money is a decimal string (never a float)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.value import permissions, roi, selectors, services
from apps.value.models import CostEntry, Stage, UseCase, ValueEntry

MONEY = {"max_digits": 16, "decimal_places": 2}


class SummarySerializer(serializers.Serializer):
    currency = serializers.CharField()
    start = serializers.DateField(allow_null=True)
    end = serializers.DateField(allow_null=True)
    cost = serializers.DecimalField(**MONEY)
    value = serializers.DecimalField(**MONEY)
    net = serializers.DecimalField(**MONEY)
    roi = serializers.DecimalField(
        max_digits=16, decimal_places=4, allow_null=True, help_text="(value − cost) / cost; null when cost is 0."
    )
    payback_date = serializers.DateField(allow_null=True)
    payback_days = serializers.IntegerField(allow_null=True)
    forecast_value = serializers.DecimalField(**MONEY, allow_null=True)
    cost_by_category = serializers.DictField(child=serializers.DecimalField(**MONEY))


class UseCaseSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = UseCase
        fields = [
            "slug",
            "name",
            "description",
            "owner",
            "sponsor",
            "team",
            "visibility",
            "stage",
            "kpi",
            "currency",
            "expected_annual_value",
            "value_assumptions",
            "value_per_prediction",
            "target_production_date",
            "target_payback_date",
            "risks",
            "created_at",
            "updated_at",
            "summary",
        ]
        read_only_fields = fields

    @extend_schema_field(SummarySerializer(allow_null=True))
    def get_summary(self, use_case: UseCase) -> dict | None:
        summaries = self.context.get("summaries", {})
        summary = summaries.get(use_case.pk)
        return None if summary is None else SummarySerializer(summary.as_dict()).data


class CostEntrySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    amount = serializers.DecimalField(**MONEY, min_value=0)
    currency = serializers.CharField(max_length=3, required=False)

    class Meta:
        model = CostEntry
        fields = [
            "id",
            "category",
            "period_start",
            "period_end",
            "amount",
            "currency",
            "source",
            "note",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["id", "source", "created_by", "created_at"]


class ValueEntrySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    amount = serializers.DecimalField(**MONEY)
    currency = serializers.CharField(max_length=3, required=False)

    class Meta:
        model = ValueEntry
        fields = [
            "id",
            "period_start",
            "period_end",
            "amount",
            "currency",
            "method",
            "evidence",
            "evidence_url",
            "note",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["id", "method", "created_by", "created_at"]


RANGE_PARAMETERS = [
    OpenApiParameter("start", date, description="First day of the figures (entries pro-rated by day)."),
    OpenApiParameter("end", date, description="Last day of the figures."),
]
LIST_PARAMETERS = [
    OpenApiParameter("stage", str, enum=list(Stage.values)),
    OpenApiParameter("team", str, description="Team slug."),
    *RANGE_PARAMETERS,
]


def _range(request) -> tuple[date | None, date | None]:
    bounds = []
    for name in ("start", "end"):
        raw = request.query_params.get(name)
        if not raw:
            bounds.append(None)
            continue
        try:
            bounds.append(date.fromisoformat(raw))
        except ValueError:
            raise serializers.ValidationError({name: "A date, YYYY-MM-DD."}) from None
    return bounds[0], bounds[1]


class UseCaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Use cases the user may see, with cost, value, net, ROI, payback and forecast."""

    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    queryset = UseCase.objects.none()
    serializer_class = UseCaseSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return UseCase.objects.none()
        use_cases = selectors.visible_use_cases(self.request.user).select_related("owner", "team").order_by("name")
        if self.action == "list":
            stage = self.request.query_params.get("stage")
            if stage:
                if stage not in Stage.values:
                    raise serializers.ValidationError({"stage": f"One of {', '.join(Stage.values)}."})
                use_cases = use_cases.filter(stage=stage)
            team = self.request.query_params.get("team")
            if team:
                use_cases = use_cases.filter(team__slug=team)
        return use_cases

    def _summaries(self, use_cases: list[UseCase]) -> dict[int, roi.Summary]:
        start, end = _range(self.request)
        ids = [use_case.pk for use_case in use_cases]
        costs, values = defaultdict(list), defaultdict(list)
        for entry in CostEntry.objects.filter(use_case_id__in=ids):
            costs[entry.use_case_id].append(entry)
        for entry in ValueEntry.objects.filter(use_case_id__in=ids):
            values[entry.use_case_id].append(entry)
        summaries = {}
        for use_case in use_cases:
            try:
                summaries[use_case.pk] = selectors.summary_of(
                    use_case, costs=costs[use_case.pk], values=values[use_case.pk], start=start, end=end
                )
            except roi.MixedCurrencyError:
                continue
        return summaries

    @extend_schema(parameters=LIST_PARAMETERS)
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        serializer = self.get_serializer(
            page, many=True, context={**self.get_serializer_context(), "summaries": self._summaries(page)}
        )
        return self.get_paginated_response(serializer.data)

    @extend_schema(parameters=RANGE_PARAMETERS)
    def retrieve(self, request, *args, **kwargs):
        use_case = self.get_object()
        context = {**self.get_serializer_context(), "summaries": self._summaries([use_case])}
        return Response(self.get_serializer(use_case, context=context).data)

    def _changeable(self) -> UseCase:
        use_case = self.get_object()
        if not permissions.can_change(self.request.user, use_case):
            raise PermissionDenied("You may not change this use case.")
        return use_case

    @extend_schema(
        methods=["GET"], responses=CostEntrySerializer(many=True), description="The use case's cost entries."
    )
    @extend_schema(
        methods=["POST"],
        request=CostEntrySerializer,
        responses={201: CostEntrySerializer},
        description="Record a cost (source: entered).",
    )
    @action(detail=True, methods=["get", "post"], url_path="costs")
    def costs(self, request, slug=None):
        if request.method == "GET":
            use_case = self.get_object()
            page = self.paginate_queryset(
                CostEntry.objects.filter(use_case=use_case).select_related("created_by").order_by("period_start", "id")
            )
            return self.get_paginated_response(CostEntrySerializer(page, many=True).data)
        use_case = self._changeable()
        serializer = CostEntrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = services.add_cost(use_case=use_case, by=request.user, **serializer.validated_data)
        return Response(CostEntrySerializer(entry).data, status=201)

    @extend_schema(
        methods=["GET"], responses=ValueEntrySerializer(many=True), description="The use case's value entries."
    )
    @extend_schema(
        methods=["POST"],
        request=ValueEntrySerializer,
        responses={201: ValueEntrySerializer},
        description="Record realised value (method: entered; evidence or evidence_url required).",
    )
    @action(detail=True, methods=["get", "post"], url_path="values")
    def values(self, request, slug=None):
        if request.method == "GET":
            use_case = self.get_object()
            page = self.paginate_queryset(
                ValueEntry.objects.filter(use_case=use_case).select_related("created_by").order_by("period_start", "id")
            )
            return self.get_paginated_response(ValueEntrySerializer(page, many=True).data)
        use_case = self._changeable()
        serializer = ValueEntrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = services.add_value(use_case=use_case, by=request.user, **serializer.validated_data)
        return Response(ValueEntrySerializer(entry).data, status=201)

    def get_object(self):
        use_case = selectors.use_case_for(self.request.user, self.kwargs.get("slug", ""))
        if use_case is None:
            raise Http404
        return use_case
