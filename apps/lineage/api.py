"""Lineage as JSON: the same permission-filtered graph the dataset page draws."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.lineage import selectors


class DatasetLineageView(APIView):
    """Upstream and downstream datasets of one dataset, through OpenLineage runs. Datasets the
    caller may not see are left out (and what lies beyond them is not reached)."""

    @extend_schema(
        parameters=[OpenApiParameter("depth", int, description=f"Hops each way, 0–{selectors.MAX_DEPTH} (3).")],
        responses={200: dict},
    )
    def get(self, request, slug: str):
        dataset = selectors.visible_dataset(request.user, slug)
        if dataset is None:
            raise Http404
        try:
            depth = int(request.query_params.get("depth", 3))
        except ValueError:
            depth = 3
        return Response(selectors.dataset_graph(request.user, dataset, depth=depth))
