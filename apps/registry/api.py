"""Model card exports over Causeway's REST API (/api/v1/registered-models/<name>/versions/<n>/
model-card[.md|.html]). Thin: the same reads and renderers as the pages' exports; a model the
caller may not see answers 404, like one that does not exist."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.registry import exports, page_selectors

_PATH_PARAMETERS = [
    OpenApiParameter("name", str, OpenApiParameter.PATH, description="The registered model's name."),
    OpenApiParameter("version", int, OpenApiParameter.PATH, description="The version number."),
]


def _document(request, name: str, version: int) -> exports.CardDocument:
    model = page_selectors.model_by_name_or_id(request.user, name)
    if model is None:
        raise Http404
    found = page_selectors.version_page_data(model, version)
    if found is None:
        raise Http404
    document = exports.card_document(request.user, model, found)
    if document is None:
        raise Http404
    return document


class ModelCardJsonView(APIView):
    """The version's model card as a Model Card Toolkit (schema v0.0.2) JSON document."""

    @extend_schema(
        operation_id="model_card_json",
        tags=["registry"],
        parameters=_PATH_PARAMETERS,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Model Card Toolkit JSON.")},
    )
    def get(self, request, name: str, version: int):
        document = _document(request, name, version)
        return Response(exports.model_card_json(document, base_url=request.build_absolute_uri("/")[:-1]))


class ModelCardMarkdownView(APIView):
    """The version's model card as Markdown in the Hugging Face style (YAML front matter)."""

    @extend_schema(
        operation_id="model_card_markdown",
        tags=["registry"],
        parameters=_PATH_PARAMETERS,
        responses={(200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="Markdown model card.")},
    )
    def get(self, request, name: str, version: int):
        document = _document(request, name, version)
        response = HttpResponse(exports.model_card_markdown(document), content_type="text/markdown; charset=utf-8")
        response["X-Content-Type-Options"] = "nosniff"
        return response


class ModelCardHtmlView(APIView):
    """The version's model card as one printable, self-contained HTML page."""

    @extend_schema(
        operation_id="model_card_html",
        tags=["registry"],
        parameters=_PATH_PARAMETERS,
        responses={(200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="Printable HTML model card.")},
    )
    def get(self, request, name: str, version: int):
        document = _document(request, name, version)
        response = HttpResponse(
            exports.model_card_html(document, request=request), content_type="text/html; charset=utf-8"
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response
