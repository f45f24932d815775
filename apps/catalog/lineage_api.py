"""POST /api/v1/lineage: OpenLineage RunEvents, as Marquez accepts them, so pipelines that
already emit OpenLineage (Airflow, Spark, dbt, the openlineage-python client) feed the catalog."""

from __future__ import annotations

import json
import zlib

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.catalog.models import LineageRunDataset
from apps.catalog.openlineage import EVENT_TYPES, ingest_run_event
from apps.core.uploads import request_too_large

MAX_EVENT_BYTES = getattr(settings, "LINEAGE_MAX_EVENT_BYTES", 1024 * 1024)


class EventTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"A lineage event may be at most {MAX_EVENT_BYTES // 1024} KB."
    default_code = "too_large"


class RunEventParser(JSONParser):
    """JSON, optionally gzip-compressed (the client's `compression: gzip`), never more than
    MAX_EVENT_BYTES read or inflated, whatever the declared length says."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        encoding = (request.META.get("HTTP_CONTENT_ENCODING", "") if request is not None else "").strip().lower()
        raw = stream.read(MAX_EVENT_BYTES + 1)
        if len(raw) > MAX_EVENT_BYTES:
            raise EventTooLarge()
        if encoding == "gzip":
            raw = _gunzip(raw)
        elif encoding not in ("", "identity"):
            raise exceptions.UnsupportedMediaType(media_type, f"Unsupported Content-Encoding {encoding!r}.")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from exc


def _gunzip(raw: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, MAX_EVENT_BYTES + 1)
    except zlib.error as exc:
        raise exceptions.ParseError("The body is not valid gzip.") from exc
    if len(body) > MAX_EVENT_BYTES:
        raise EventTooLarge()
    return body


# The request is parsed and checked by apps.catalog.openlineage (so unknown fields are ignored
# and errors name the field path); these serializers only describe it in the OpenAPI schema.
class OpenLineageDatasetSerializer(serializers.Serializer):
    namespace = serializers.CharField(max_length=500)
    name = serializers.CharField(max_length=500)
    facets = serializers.DictField(
        required=False,
        help_text="Dataset facets. On COMPLETE, an output's `schema.fields[{name, type, description}]` "
        "is recorded as a new version when the columns changed.",
    )


class OpenLineageRunSerializer(serializers.Serializer):
    runId = serializers.UUIDField()  # noqa: N815 (the OpenLineage name)
    facets = serializers.DictField(required=False)


class OpenLineageJobSerializer(serializers.Serializer):
    namespace = serializers.CharField(max_length=500)
    name = serializers.CharField(max_length=500)
    facets = serializers.DictField(required=False)


class OpenLineageRunEventSerializer(serializers.Serializer):
    eventType = serializers.ChoiceField(choices=EVENT_TYPES, required=False)  # noqa: N815
    eventTime = serializers.DateTimeField()  # noqa: N815
    producer = serializers.CharField(required=False)
    schemaURL = serializers.CharField(required=False)  # noqa: N815
    run = OpenLineageRunSerializer()
    job = OpenLineageJobSerializer()
    inputs = OpenLineageDatasetSerializer(many=True, required=False)
    outputs = OpenLineageDatasetSerializer(many=True, required=False)


RunEventAccepted = inline_serializer(
    name="OpenLineageRunAccepted",
    fields={
        "run_id": serializers.UUIDField(),
        "inputs": serializers.IntegerField(help_text="Datasets this run is known to have read."),
        "outputs": serializers.IntegerField(help_text="Datasets this run is known to have written."),
    },
)


class LineageIngestView(APIView):
    """Accept one OpenLineage RunEvent (Marquez-compatible)."""

    parser_classes = [RunEventParser]
    http_method_names = ["post", "options"]

    @extend_schema(
        operation_id="lineage_ingest",
        tags=["lineage"],
        summary="Post an OpenLineage RunEvent",
        description=(
            "Upserts the run by `run.runId`, registers unknown datasets by (namespace, name) for the "
            "caller, and links them as inputs and outputs. Unknown fields are ignored. The body may be "
            "gzip-compressed (`Content-Encoding: gzip`) and at most 1 MB."
        ),
        request=OpenLineageRunEventSerializer,
        responses={
            201: RunEventAccepted,
            400: OpenApiResponse(description="A required field is missing or malformed; details name its path."),
            403: OpenApiResponse(description="The caller may not write lineage for one of the datasets."),
            413: OpenApiResponse(description="The event is larger than 1 MB."),
        },
    )
    def post(self, request: Request) -> Response:
        if request_too_large(request, MAX_EVENT_BYTES):
            raise EventTooLarge()
        run = ingest_run_event(event=request.data, by=request.user)
        directions = list(run.datasets.values_list("direction", flat=True))
        return Response(
            {
                "run_id": str(run.run_id),
                "inputs": directions.count(LineageRunDataset.Direction.INPUT),
                "outputs": directions.count(LineageRunDataset.Direction.OUTPUT),
            },
            status=status.HTTP_201_CREATED,
        )
