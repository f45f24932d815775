"""The lineage graph, read across apps. Reads only.

Today the graph holds datasets linked through OpenLineage runs (a run's inputs → its outputs).
Nodes carry a `kind` so runs, model versions and endpoints can join the same graph later.
The walk never passes through a dataset the user may not see: hidden datasets are not nodes,
are not named, and what lies beyond them is not reached.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, QuerySet

from apps.catalog.models import Dataset, LineageRun, LineageRunDataset
from apps.catalog.selectors import visible_datasets

MAX_DEPTH = 6
MAX_NODES = 150

INPUT, OUTPUT = LineageRunDataset.Direction.INPUT, LineageRunDataset.Direction.OUTPUT


def node_id(kind: str, pk: Any) -> str:
    return f"{kind}:{pk}"


def visible_dataset(user, slug: str) -> Dataset | None:
    """The dataset with this slug if `user` may see it (one query)."""
    return visible_datasets(user).filter(slug=slug).only("pk", "name", "slug").first()


def dataset_graph(user, dataset: Dataset, depth: int = 3, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """Datasets up to `depth` hops upstream and downstream of `dataset` through lineage runs,
    breadth-first, only through datasets `user` may see (the caller has checked `dataset`).

    Returns {"nodes": [...], "edges": [...], "truncated": bool}. A node is {id, label, kind,
    slug, classification, is_focus, layer}: layer < 0 upstream, 0 the focus, > 0 downstream.
    An edge is {source, target, run, job}: data flowed from source to target in `run` (the
    latest run linking them; `runs` counts them all). Queries: one per hop and direction,
    then one for the nodes and one for the runs, whatever the size of the graph.
    """
    depth = max(0, min(int(depth), MAX_DEPTH))
    visible = visible_datasets(user).values("pk")
    layers: dict[int, int] = {dataset.pk: 0}
    pairs: dict[tuple[int, int], dict[str, int]] = {}  # (source, target) -> {run, runs}
    truncated = False
    for step, sign in ((upstream_pairs, -1), (downstream_pairs, 1)):
        frontier = {dataset.pk}
        for hop in range(1, depth + 1):
            if not frontier:
                break
            found = step(frontier, visible, limit=max_nodes + 1)
            truncated = truncated or len(found) > max_nodes
            next_frontier = set()
            for source, target, run, runs in found[:max_nodes]:
                new = source if sign < 0 else target
                if new not in layers:
                    if len(layers) >= max_nodes:
                        truncated = True
                        continue
                    layers[new] = sign * hop
                    next_frontier.add(new)
                pairs[(source, target)] = {"run": run, "runs": runs}
            frontier = next_frontier
    nodes = _dataset_nodes(layers, focus=dataset.pk)
    runs = {
        run.pk: run
        for run in LineageRun.objects.filter(pk__in={p["run"] for p in pairs.values()}).only(
            "run_id", "job_namespace", "job_name"
        )
    }
    edges = [
        {
            "source": node_id("dataset", source),
            "target": node_id("dataset", target),
            "run": str(runs[link["run"]].run_id),
            "job": f"{runs[link['run']].job_namespace}/{runs[link['run']].job_name}",
            "runs": link["runs"],
        }
        for (source, target), link in sorted(pairs.items())
        if source in layers and target in layers and link["run"] in runs
    ]
    return {"nodes": nodes, "edges": edges, "truncated": truncated}


def upstream_pairs(targets: set[int], visible: QuerySet, *, limit: int) -> list[tuple[int, int, int, int]]:
    """(source, target, latest run, runs) for visible datasets read by runs that wrote `targets`."""
    # One filter() call, so the input link and the output link are the same run's (one join).
    rows = (
        LineageRunDataset.objects.filter(
            direction=INPUT,
            dataset_id__in=visible,
            run__datasets__direction=OUTPUT,
            run__datasets__dataset_id__in=targets,
        )
        .values_list("dataset_id", "run__datasets__dataset_id")
        .annotate(latest=Max("run"), runs=Count("run", distinct=True))
        .order_by("dataset_id", "run__datasets__dataset_id")
    )
    return [(source, target, run, n) for source, target, run, n in rows[:limit] if source != target]


def downstream_pairs(sources: set[int], visible: QuerySet, *, limit: int) -> list[tuple[int, int, int, int]]:
    """(source, target, latest run, runs) for visible datasets written by runs that read `sources`."""
    rows = (
        LineageRunDataset.objects.filter(
            direction=OUTPUT,
            dataset_id__in=visible,
            run__datasets__direction=INPUT,
            run__datasets__dataset_id__in=sources,
        )
        .values_list("run__datasets__dataset_id", "dataset_id")
        .annotate(latest=Max("run"), runs=Count("run", distinct=True))
        .order_by("run__datasets__dataset_id", "dataset_id")
    )
    return [(source, target, run, n) for source, target, run, n in rows[:limit] if source != target]


def _dataset_nodes(layers: dict[int, int], *, focus: int) -> list[dict[str, Any]]:
    rows = Dataset.objects.filter(pk__in=layers).values("pk", "name", "slug", "classification")
    nodes = [
        {
            "id": node_id("dataset", row["pk"]),
            "label": row["name"],
            "kind": "dataset",
            "slug": row["slug"],
            "classification": row["classification"],
            "is_focus": row["pk"] == focus,
            "layer": layers[row["pk"]],
        }
        for row in rows
    ]
    return sorted(nodes, key=lambda node: (node["layer"], node["label"].lower(), node["id"]))
