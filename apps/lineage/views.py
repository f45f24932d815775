"""Lineage pages: HTML fragments that other apps' pages load with htmx. Reads only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
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
    for node in graph["nodes"]:
        node["url"] = reverse("catalog:dataset", kwargs={"slug": node["slug"]})
        node["hops"] = abs(node["layer"])
    context = {
        "dataset": dataset,
        "graph": graph,
        "figure_json": charts.graph_figure_json(graph) if graph["edges"] else None,
        "upstream": [n for n in graph["nodes"] if n["layer"] < 0],
        "downstream": [n for n in graph["nodes"] if n["layer"] > 0],
    }
    return render(request, "lineage/_dataset_graph.html", context)


def _depth(request: HttpRequest) -> int:
    try:
        return max(1, min(int(request.GET.get("depth", 3)), selectors.MAX_DEPTH))
    except ValueError:
        return 3
