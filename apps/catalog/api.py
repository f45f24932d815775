"""Catalog REST API (/api/v1/datasets…, /api/v1/access-requests…). Same visibility and
content rules as the pages: invisible datasets answer 404, restricted content 403."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.accounts.models import Team
from apps.catalog import permissions, selectors, services
from apps.catalog.models import AccessRequest, Column, Dataset, DatasetVersion, Domain
from apps.core.uploads import request_too_large


class ColumnSerializer(serializers.ModelSerializer):
    class Meta:
        model = Column
        fields = ["position", "name", "type", "physical_type", "nullable", "is_pii", "description"]


class VersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DatasetVersion
        fields = [
            "number",
            "status",
            "content_hash",
            "size_bytes",
            "row_count",
            "format",
            "source_uri",
            "note",
            "error",
            "created_by",
            "created_at",
            "profiled_at",
        ]


class DatasetSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True)
    domain = serializers.SlugRelatedField(
        slug_field="slug", queryset=Domain.objects.all(), required=False, allow_null=True
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=60), required=False, write_only=True)
    tag_names = serializers.SerializerMethodField()
    current_version = VersionSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Dataset
        fields = [
            "slug",
            "name",
            "description",
            "owner",
            "team",
            "domain",
            "tags",
            "tag_names",
            "classification",
            "visibility",
            "source_kind",
            "source_uri",
            "format",
            "documentation_links",
            "current_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["slug", "owner", "current_version", "created_at", "updated_at"]

    def get_tag_names(self, dataset: Dataset) -> list[str]:
        named = getattr(dataset, "tag_names", None)  # search results come with their tags named (selectors)
        return named if named is not None else [tag.name for tag in dataset.tags.all()]


class DatasetDetailSerializer(DatasetSerializer):
    columns = serializers.SerializerMethodField()

    class Meta(DatasetSerializer.Meta):
        fields = DatasetSerializer.Meta.fields + ["columns"]

    def get_columns(self, dataset: Dataset) -> list[dict]:
        return ColumnSerializer(selectors.columns_of(dataset.current_version), many=True).data


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(required=False)
    server_path = serializers.CharField(required=False, max_length=1000)
    note = serializers.CharField(required=False, max_length=500, default="")

    def validate(self, data):
        if bool(data.get("file")) == bool(data.get("server_path")):
            raise serializers.ValidationError("Give exactly one of file or server_path.")
        return data


class AccessRequestSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "dataset",
            "requester",
            "purpose",
            "duration_days",
            "status",
            "decided_by",
            "decided_at",
            "decision_comment",
            "expires_at",
            "created_at",
        ]
        read_only_fields = fields


class AccessRequestCreateSerializer(serializers.Serializer):
    purpose = serializers.CharField(min_length=10, max_length=5000)
    duration_days = serializers.IntegerField(min_value=1, max_value=settings.CATALOG_MAX_ACCESS_DAYS, default=90)


class DecisionSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


SEARCH_PARAMETERS = [
    OpenApiParameter("q", str, description="Words to search in names, tags, columns and descriptions."),
    *[OpenApiParameter(facet, str, many=True, description=f"Filter by {facet}.") for facet in selectors.FACETS],
]


class DatasetViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Datasets the user may see. `q` and the facet parameters search; results are ranked."""

    lookup_field = "slug"
    queryset = Dataset.objects.none()
    filter_backends: list = []
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Dataset.objects.none()
        if self.action == "list":
            filters = {facet: self.request.query_params.getlist(facet) for facet in selectors.FACETS}
            return selectors.search_datasets(
                self.request.user, text=self.request.query_params.get("q", ""), filters=filters, with_facets=False
            ).datasets
        return (
            selectors.visible_datasets(self.request.user)
            .select_related("owner", "team", "domain", "current_version")
            .prefetch_related("tags")
        )

    def get_serializer_class(self):
        return DatasetDetailSerializer if self.action == "retrieve" else DatasetSerializer

    @extend_schema(parameters=SEARCH_PARAMETERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = services.create_dataset(by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        tags = data.pop("tags", None)
        serializer.instance = services.update_dataset(
            dataset=serializer.instance, by=self.request.user, tags=tags, **data
        )

    @extend_schema(responses=VersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, slug=None):
        dataset = self.get_object()
        return Response(VersionSerializer(selectors.versions_of(dataset)[:200], many=True).data)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: VersionSerializer})
    @versions.mapping.post
    def add_version(self, request, slug=None):
        dataset = self.get_object()
        if request_too_large(request, settings.CATALOG_MAX_UPLOAD_BYTES):
            return _too_large()
        incoming = UploadSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            if data.get("file"):
                version = services.add_version_from_upload(
                    dataset=dataset, by=request.user, upload=data["file"], note=data["note"]
                )
            else:
                version = services.add_version_from_path(
                    dataset=dataset, by=request.user, path=data["server_path"], note=data["note"]
                )
        except services.UploadTooLarge:
            return _too_large()
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def profile(self, request, slug=None):
        """Column statistics of the current version (value-level ones need content access)."""
        dataset = self.get_object()
        columns = selectors.columns_of(dataset.current_version)
        stats = selectors.column_stats_for(request.user, dataset, columns)
        return Response(
            {
                "version": dataset.current_version.number if dataset.current_version else None,
                "row_count": dataset.current_version.row_count if dataset.current_version else None,
                "content_visible": permissions.can_see_content(request.user, dataset),
                "columns": [{"name": c.name, "type": c.type, "stats": stats.get(c.pk)} for c in columns],
            }
        )

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def sample(self, request, slug=None):
        dataset = self.get_object()
        if dataset.current_version is None:
            raise Http404
        rows = selectors.sample_rows_for(request.user, dataset, dataset.current_version)
        if rows is None:
            raise PermissionDenied("Samples of this dataset need an approved access request.")
        return Response({"version": dataset.current_version.number, "rows": rows})

    @extend_schema(parameters=[OpenApiParameter("a", int), OpenApiParameter("b", int)], responses={200: dict})
    @action(detail=True, methods=["get"])
    def diff(self, request, slug=None):
        dataset = self.get_object()
        try:
            a, b = int(request.query_params.get("a", "")), int(request.query_params.get("b", ""))
        except ValueError:
            raise serializers.ValidationError({"a": "Give two version numbers, a and b."})
        versions = {v.number: v for v in dataset.versions.filter(number__in=[a, b])}
        if a not in versions or b not in versions:
            raise Http404
        return Response(selectors.schema_diff(versions[a], versions[b]))

    @extend_schema(request=AccessRequestCreateSerializer, responses={201: AccessRequestSerializer})
    @action(detail=True, methods=["post"], url_path="access-requests")
    def request_access(self, request, slug=None):
        dataset = self.get_object()
        incoming = AccessRequestCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        created = services.request_access(dataset=dataset, by=request.user, **incoming.validated_data)
        return Response(AccessRequestSerializer(created).data, status=status.HTTP_201_CREATED)


class AccessRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your access requests, and those waiting for your decision (`?inbox=1`)."""

    serializer_class = AccessRequestSerializer
    queryset = AccessRequest.objects.none()
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccessRequest.objects.none()
        user = self.request.user
        if self.action == "list" and self.request.query_params.get("inbox"):
            return selectors.access_inbox(user)
        mine = selectors.access_requests_of(user)
        return (mine | selectors.access_inbox(user)).distinct() if self.action != "list" else mine

    @extend_schema(parameters=[OpenApiParameter("inbox", bool)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=DecisionSerializer, responses=AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        incoming = DecisionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        decided = services.decide_access_request(
            access_request=self.get_object(), by=request.user, **incoming.validated_data
        )
        return Response(AccessRequestSerializer(decided).data)


def _too_large() -> Response:
    limit = settings.CATALOG_MAX_UPLOAD_BYTES // (1024 * 1024)
    return Response(
        {"error": {"code": "too_large", "message": f"The file is over the {limit} MB upload limit.", "details": {}}},
        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )
