"""Lineage as JSON: the same permission-filtered graphs the dataset, run and model version pages
draw. Hidden or unknown focus objects answer 404."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.lineage import selectors

DEPTH = OpenApiParameter("depth", int, description=f"Hops each way, 0–{selectors.MAX_DEPTH} (3).")

GRAPH_SCHEMA = inline_serializer(
    "LineageGraph",
    {
        "nodes": inline_serializer(
            "LineageNode",
            {
                "id": serializers.CharField(help_text="`<kind>:<id>`, e.g. `dataset:12`, `run:40`."),
                "kind": serializers.CharField(
                    help_text="dataset, run or model_version today; more kinds (deployments) will be added."
                ),
                "label": serializers.CharField(),
                "is_focus": serializers.BooleanField(),
                "layer": serializers.IntegerField(help_text="Hops from the focus: < 0 upstream, > 0 downstream."),
                "slug": serializers.CharField(required=False, help_text="Datasets."),
                "classification": serializers.CharField(required=False, help_text="Datasets."),
                "run_uuid": serializers.CharField(required=False, help_text="Runs."),
                "experiment_id": serializers.IntegerField(required=False, help_text="Runs."),
                "experiment": serializers.CharField(required=False, help_text="Runs: the experiment's name."),
                "status": serializers.CharField(required=False, help_text="Runs."),
                "deleted": serializers.BooleanField(required=False, help_text="Runs: run or experiment deleted."),
                "model": serializers.CharField(required=False, help_text="Model versions: the registered model."),
                "version": serializers.IntegerField(required=False, help_text="Model versions."),
                "stage": serializers.CharField(required=False, help_text="Model versions."),
            },
            many=True,
        ),
        "edges": inline_serializer(
            "LineageEdge",
            {
                "source": serializers.CharField(),
                "target": serializers.CharField(),
                "kind": serializers.CharField(
                    help_text="flow (an OpenLineage run read source and wrote target), input (the run read a "
                    "version of the dataset), registered (the model version was registered from the run)."
                ),
                "run": serializers.CharField(required=False, help_text="flow: the latest OpenLineage run id."),
                "job": serializers.CharField(required=False, help_text="flow: `namespace/name` of its job."),
                "runs": serializers.IntegerField(required=False, help_text="flow: how many runs linked the two."),
                "version": serializers.IntegerField(required=False, help_text="input: the newest version read."),
                "versions": serializers.IntegerField(required=False, help_text="input: how many versions were read."),
                "context": serializers.CharField(required=False, help_text="input: e.g. training."),
            },
            many=True,
        ),
        "truncated": serializers.BooleanField(help_text="Some nodes were left out to keep the graph small."),
        "focus": serializers.CharField(help_text="The id of the node the graph is drawn around."),
    },
)


def _depth(request: Request) -> int:
    try:
        return int(request.query_params.get("depth", 3))
    except ValueError:
        return 3


class DatasetLineageView(APIView):
    """Upstream datasets, and downstream datasets, runs and model versions of one dataset. Nodes
    the caller may not see are left out (and what lies beyond them is not reached)."""

    @extend_schema(operation_id="lineage_dataset", parameters=[DEPTH], responses={200: GRAPH_SCHEMA})
    def get(self, request, slug: str):
        dataset = selectors.visible_dataset(request.user, slug)
        if dataset is None:
            raise Http404
        return Response(selectors.dataset_graph(request.user, dataset, depth=_depth(request)))


class RunLineageView(APIView):
    """The datasets a tracking run read (and what they came from) and the model versions
    registered from it. Hidden nodes are left out and not walked through."""

    @extend_schema(operation_id="lineage_run", parameters=[DEPTH], responses={200: GRAPH_SCHEMA})
    def get(self, request, run_uuid: str):
        run = selectors.visible_run(request.user, run_uuid)
        if run is None:
            raise Http404
        return Response(selectors.run_graph(request.user, run, depth=_depth(request)))


class ModelVersionLineageView(APIView):
    """The run a model version was registered from, the datasets that run read and what they
    came from. Hidden nodes are left out and not walked through."""

    @extend_schema(operation_id="lineage_model_version", parameters=[DEPTH], responses={200: GRAPH_SCHEMA})
    def get(self, request, name: str, version: int):
        found = selectors.visible_version(request.user, name, version)
        if found is None:
            raise Http404
        return Response(selectors.version_graph(request.user, found, depth=_depth(request)))
