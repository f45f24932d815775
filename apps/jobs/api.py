from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.jobs import selectors, services
from apps.jobs.filters import JobFilter
from apps.jobs.models import Job, JobLogEntry


class JobLogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = JobLogEntry
        fields = ["at", "level", "message"]


class JobSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    target_type = serializers.SlugRelatedField(slug_field="model", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "message",
            "params",
            "result",
            "error",
            "requested_by",
            "target_type",
            "target_id",
            "target_label",
            "attempts",
            "max_attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class JobDetailSerializer(JobSerializer):
    log = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["log"]
        read_only_fields = fields

    def get_log(self, job: Job) -> list[dict]:
        return JobLogEntrySerializer(selectors.log_of(job), many=True).data


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Jobs: ops and admins see all, others their own. Hidden jobs answer 404."""

    filterset_class = JobFilter
    queryset = Job.objects.none()  # for the schema; get_queryset filters by user
    ordering_fields = ["created_at", "status", "kind"]

    def get_queryset(self):
        return selectors.jobs_visible_to(self.request.user).order_by("-created_at")

    def get_serializer_class(self):
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return Response(JobSerializer(services.cancel_job(job=self.get_object(), by=request.user)).data)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return Response(JobSerializer(services.retry_job(job=self.get_object(), by=request.user)).data)
