"""Lineage pages: HTML fragments that other apps' pages load with htmx. Reads only."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.lineage import charts, selectors


@login_required
@require_GET
def dataset_lineage(request: HttpRequest, slug: str) -> HttpResponse:
    """The lineage graph around one dataset, for the dataset page's Lineage tab."""
    dataset = selectors.visible_dataset(request.user, slug)
    if dataset is None:
        raise Http404("No such dataset.")
    graph = selectors.dataset_graph(request.user, dataset, depth=_depth(request))
    return _render(request, graph, figure_id=f"lineage-fig-{dataset.pk}", focus_name=dataset.name, kind="dataset")


@login_required
@require_GET
def run_lineage(request: HttpRequest, run_uuid: str) -> HttpResponse:
    """The lineage graph around one tracking run, for the run page's Inputs & models tab."""
    run = selectors.visible_run(request.user, run_uuid)
    if run is None:
        raise Http404("No such run.")
    graph = selectors.run_graph(request.user, run, depth=_depth(request))
    return _render(request, graph, figure_id=f"lineage-fig-run-{run.pk}", focus_name=str(run), kind="run")


@login_required
@require_GET
def version_lineage(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """The lineage graph around one model version, for the registry's version page."""
    found = selectors.visible_version(request.user, name, version)
    if found is None:
        raise Http404("No such model version.")
    graph = selectors.version_graph(request.user, found, depth=_depth(request))
    label = f"{found.registered_model.name} v{found.version}"
    return _render(request, graph, figure_id=f"lineage-fig-version-{found.pk}", focus_name=label, kind="model_version")


def _render(request: HttpRequest, graph: dict[str, Any], *, figure_id: str, focus_name: str, kind: str) -> HttpResponse:
    charts.add_links(graph)
    for node in graph["nodes"]:
        node["icon"] = charts.style_of(node["kind"])["icon"]
    context = {
        "graph": graph,
        "figure_id": figure_id,
        "focus_name": focus_name,
        "focus_kind": charts.style_of(kind)["singular"],
        "figure_json": charts.graph_figure_json(graph) if graph["edges"] else None,
        "upstream": [n for n in graph["nodes"] if n["layer"] < 0],
        "downstream": [n for n in graph["nodes"] if n["layer"] > 0],
        "max_nodes": selectors.MAX_NODES,
        "max_runs": selectors.MAX_RUNS_PER_HOP,
    }
    return render(request, "lineage/_graph.html", context)


def _depth(request: HttpRequest) -> int:
    try:
        return max(1, min(int(request.GET.get("depth", 3)), selectors.MAX_DEPTH))
    except ValueError:
        return 3
