"""The lineage graph, read across apps. Reads only.

Nodes are datasets (apps.catalog), tracking runs (apps.tracking), model versions
(apps.registry) and endpoints (apps.deployments). Edges are read from the data itself:
- dataset → dataset: an OpenLineage run read the one and wrote the other ("flow");
- dataset → run: the run logged a version of the dataset as an input (RunInput, "input");
- run → model version: the version was registered from the run ("registered");
- model version → endpoint: the endpoint served the version, now or before ("deployed").

Every node is filtered with its owning app's selector (visible_datasets, visible_runs,
visible_versions, visible_endpoints). The walk never passes through a node the user may not see: hidden nodes are
not in the graph, are not named, and what lies beyond them is not reached.

Cost: at most one query per kind of step per hop and direction (a hop from datasets reads
OpenLineage flows and run inputs: two; from runs, model versions or input datasets: one each),
then one query per kind of node present and one for the OpenLineage runs on the edges — however
wide the graph grows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from apps.catalog.models import Dataset, LineageRun, LineageRunDataset
from apps.catalog.selectors import visible_datasets
from apps.deployments.models import Endpoint, EndpointRevision
from apps.deployments.selectors import visible_endpoints
from apps.registry.models import ModelVersion
from apps.registry.selectors import visible_versions
from apps.tracking.models import Lifecycle, Run, RunInput
from apps.tracking.selectors import run_for, visible_runs

MAX_DEPTH = 6
MAX_NODES = 150
# A popular dataset may feed hundreds of runs: each hop draws at most this many of them, those
# a model version was registered from first, then the newest.
MAX_RUNS_PER_HOP = 12
MAX_VERSION_NUMBER = 2**31 - 1

DATASET, RUN, MODEL_VERSION, ENDPOINT = "dataset", "run", "model_version", "endpoint"
# In data-flow order. Charts and templates style unknown kinds plainly.
NODE_KINDS = [DATASET, RUN, MODEL_VERSION, ENDPOINT]
KIND_ORDER = {kind: index for index, kind in enumerate(NODE_KINDS)}

INPUT, OUTPUT = LineageRunDataset.Direction.INPUT, LineageRunDataset.Direction.OUTPUT
UPSTREAM, DOWNSTREAM = -1, 1

Key = tuple[str, int]  # (kind, pk)
Link = tuple[int, int, dict[str, Any]]  # (source pk, target pk, edge facts) in data-flow order


def node_id(kind: str, pk: Any) -> str:
    return f"{kind}:{pk}"


# --- The focus ---------------------------------------------------------------------------------


def visible_dataset(user, slug: str) -> Dataset | None:
    """The dataset with this slug if `user` may see it (one query)."""
    return visible_datasets(user).filter(slug=slug).only("pk", "name", "slug").first()


def visible_run(user, run_uuid: str) -> Run | None:
    """The run with this id if `user` may see it (tracking's own check)."""
    return run_for(user, run_uuid)


def visible_version(user, name: str, number: int | str) -> ModelVersion | None:
    """Live version `number` of the model called exactly `name` if `user` may see it (one query)."""
    if not name or not str(number).isdigit() or int(number) > MAX_VERSION_NUMBER:
        return None
    return (
        visible_versions(user)
        .filter(registered_model__name=name, version=int(number))
        .select_related("registered_model")
        .only("pk", "version", "registered_model__name")
        .first()
    )


# --- The graph ---------------------------------------------------------------------------------


def dataset_graph(user, dataset: Dataset, depth: int = 3, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """Up to `depth` hops upstream (datasets it was derived from) and downstream (datasets
    derived from it, runs that read its versions, model versions registered from those runs)
    of `dataset`, only through nodes `user` may see (the caller has checked `dataset`).

    Returns {"nodes": [...], "edges": [...], "truncated": bool, "focus": id}. Every node has
    {id, label, kind, is_focus, layer} (layer < 0 upstream, 0 the focus, > 0 downstream) plus
    its kind's facts: datasets {slug, classification}; runs {run_uuid, experiment_id,
    experiment, status, deleted}; model versions {model, version, stage}. Every edge has
    {source, target, kind}: "flow" edges add {run, job, runs} (the latest OpenLineage run
    linking the two datasets, and how many did), "input" edges {version, versions, context}
    (the newest dataset version the run read, how many it read), "registered" edges nothing.
    """
    return graph_around(user, (DATASET, dataset.pk), depth=depth, max_nodes=max_nodes)


def run_graph(user, run: Run, depth: int = 3, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """The run's input datasets and what they came from, and the model versions registered from
    it; same shape as dataset_graph (the caller has checked `run`)."""
    return graph_around(user, (RUN, run.pk), depth=depth, max_nodes=max_nodes)


def version_graph(user, version: ModelVersion, depth: int = 3, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """The run the version was registered from, that run's input datasets and what they came
    from; same shape as dataset_graph (the caller has checked `version`)."""
    return graph_around(user, (MODEL_VERSION, version.pk), depth=depth, max_nodes=max_nodes)


def graph_around(user, focus: Key, *, depth: int, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """Breadth-first, upstream then downstream, each hop reading every step out of the frontier's
    kinds in one query per step."""
    depth = max(0, min(int(depth), MAX_DEPTH))
    visible = _Visible(user)
    layers: dict[Key, int] = {focus: 0}
    links: dict[tuple[Key, Key], dict[str, Any]] = {}
    truncated = False
    for direction in (UPSTREAM, DOWNSTREAM):
        frontier: set[Key] = {focus}
        for hop in range(1, depth + 1):
            if not frontier:
                break
            by_kind: dict[str, set[int]] = defaultdict(set)
            for kind, pk in frontier:
                by_kind[kind].add(pk)
            next_frontier: set[Key] = set()
            for kind in sorted(by_kind, key=lambda k: KIND_ORDER.get(k, len(KIND_ORDER))):
                for to_kind, read in STEPS[direction].get(kind, ()):
                    limit = max_nodes + 1 if to_kind != RUN else min(max_nodes, MAX_RUNS_PER_HOP) + 1
                    found = read(by_kind[kind], visible, limit=limit)
                    if len(found) >= limit:
                        truncated = True
                    for source, target, facts in found[: limit - 1]:
                        if direction == DOWNSTREAM:
                            near, far = (kind, source), (to_kind, target)
                        else:
                            near, far = (kind, target), (to_kind, source)
                        if far not in layers:
                            if len(layers) >= max_nodes:
                                truncated = True
                                continue
                            layers[far] = direction * hop
                            next_frontier.add(far)
                        ends = (near, far) if direction == DOWNSTREAM else (far, near)
                        links[ends] = facts
            frontier = next_frontier
    nodes = _nodes(layers, focus=focus)
    edges = _edges(links, layers)
    return {"nodes": nodes, "edges": edges, "truncated": truncated, "focus": node_id(*focus)}


class _Visible:
    """The owning apps' permission filters as `pk IN (subquery)` values, built on first use (so
    a graph without runs never asks who may see runs)."""

    def __init__(self, user):
        self.user = user
        self._cache: dict[str, QuerySet] = {}

    def __getitem__(self, kind: str) -> QuerySet:
        if kind not in self._cache:
            self._cache[kind] = {
                DATASET: lambda: visible_datasets(self.user).values("pk"),
                RUN: lambda: visible_runs(self.user).values("pk"),
                MODEL_VERSION: lambda: visible_versions(self.user).values("pk"),
                ENDPOINT: lambda: visible_endpoints(self.user).values("pk"),
            }[kind]()
        return self._cache[kind]


# --- Steps: (from kind, direction) → readers of the next kind ----------------------------------
# Each reader answers links in data-flow order (source pk, target pk, facts) whose far end is
# visible, at most `limit` of them.


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


def _flows(pairs: list[tuple[int, int, int, int]]) -> list[Link]:
    return [(source, target, {"kind": "flow", "run": run, "runs": n}) for source, target, run, n in pairs]


def _datasets_upstream(targets: set[int], visible: _Visible, *, limit: int) -> list[Link]:
    return _flows(upstream_pairs(targets, visible[DATASET], limit=limit))


def _datasets_downstream(sources: set[int], visible: _Visible, *, limit: int) -> list[Link]:
    return _flows(downstream_pairs(sources, visible[DATASET], limit=limit))


def _run_inputs(rows: QuerySet) -> QuerySet:
    return (
        rows.values_list("dataset_version__dataset_id", "run_id")
        .annotate(
            version=Max("dataset_version__number"),
            versions=Count("dataset_version", distinct=True),
            context=Max("context"),
        )
        .order_by()
    )


def _runs_reading(datasets: set[int], visible: _Visible, *, limit: int) -> list[Link]:
    """Visible runs that logged a version of `datasets` as an input: those a visible model
    version was registered from first, then the newest."""
    registered = Exists(ModelVersion.objects.filter(run_id=OuterRef("run_id"), pk__in=visible[MODEL_VERSION]))
    rows = (
        _run_inputs(RunInput.objects.filter(dataset_version__dataset_id__in=datasets, run_id__in=visible[RUN]))
        .annotate(registered=registered)
        .order_by("-registered", "-run_id", "dataset_version__dataset_id")
    )
    return [_input_link(row) for row in rows[:limit]]


def _datasets_read(runs: set[int], visible: _Visible, *, limit: int) -> list[Link]:
    """Visible datasets whose versions `runs` logged as inputs."""
    rows = _run_inputs(
        RunInput.objects.filter(run_id__in=runs, dataset_version__dataset_id__in=visible[DATASET])
    ).order_by("dataset_version__dataset_id", "run_id")
    return [_input_link(row) for row in rows[:limit]]


def _input_link(row: tuple) -> Link:
    dataset, run, version, versions, context = row[:5]
    return (dataset, run, {"kind": "input", "version": version, "versions": versions, "context": context})


def _versions_registered(runs: set[int], visible: _Visible, *, limit: int) -> list[Link]:
    """Visible, live model versions registered from `runs`."""
    rows = (
        ModelVersion.objects.filter(run_id__in=runs, pk__in=visible[MODEL_VERSION])
        .values_list("run_id", "pk")
        .order_by("run_id", "pk")
    )
    return [(run, version, {"kind": "registered"}) for run, version in rows[:limit]]


def _source_runs(versions: set[int], visible: _Visible, *, limit: int) -> list[Link]:
    """The visible runs `versions` were registered from."""
    rows = (
        ModelVersion.objects.filter(pk__in=versions, run_id__in=visible[RUN])
        .values_list("run_id", "pk")
        .order_by("run_id", "pk")
    )
    return [(run, version, {"kind": "registered"}) for run, version in rows[:limit]]


def _endpoints_serving(versions: set[int], visible: _Visible, *, limit: int) -> list[Link]:
    """Visible endpoints that served `versions` (now or before), from their history."""
    rows = (
        EndpointRevision.objects.filter(model_version_id__in=versions, endpoint_id__in=visible[ENDPOINT])
        .values_list("model_version_id", "endpoint_id")
        .annotate(live=Count("pk", filter=Q(ended_at__isnull=True)))
        .order_by("model_version_id", "endpoint_id")
    )
    return [(version, endpoint, {"kind": "deployed", "live": bool(live)}) for version, endpoint, live in rows[:limit]]


def _versions_served(endpoints: set[int], visible: _Visible, *, limit: int) -> list[Link]:
    """The visible model versions `endpoints` served."""
    rows = (
        EndpointRevision.objects.filter(endpoint_id__in=endpoints, model_version_id__in=visible[MODEL_VERSION])
        .values_list("model_version_id", "endpoint_id")
        .annotate(live=Count("pk", filter=Q(ended_at__isnull=True)))
        .order_by("model_version_id", "endpoint_id")
    )
    return [(version, endpoint, {"kind": "deployed", "live": bool(live)}) for version, endpoint, live in rows[:limit]]


Reader = Callable[..., list[Link]]
STEPS: dict[int, dict[str, list[tuple[str, Reader]]]] = {
    UPSTREAM: {
        DATASET: [(DATASET, _datasets_upstream)],
        RUN: [(DATASET, _datasets_read)],
        MODEL_VERSION: [(RUN, _source_runs)],
        ENDPOINT: [(MODEL_VERSION, _versions_served)],
    },
    DOWNSTREAM: {
        DATASET: [(DATASET, _datasets_downstream), (RUN, _runs_reading)],
        RUN: [(MODEL_VERSION, _versions_registered)],
        MODEL_VERSION: [(ENDPOINT, _endpoints_serving)],
    },
}


# --- Nodes and edges ---------------------------------------------------------------------------


def _nodes(layers: dict[Key, int], *, focus: Key) -> list[dict[str, Any]]:
    by_kind: dict[str, list[int]] = defaultdict(list)
    for kind, pk in layers:
        by_kind[kind].append(pk)
    nodes = []
    for kind, pks in by_kind.items():
        for pk, facts in NODE_FACTS[kind](pks).items():
            nodes.append(
                {"id": node_id(kind, pk), "kind": kind, "is_focus": (kind, pk) == focus, "layer": layers[(kind, pk)]}
                | facts
            )
    return sorted(
        nodes, key=lambda n: (n["layer"], KIND_ORDER.get(n["kind"], len(KIND_ORDER)), n["label"].lower(), n["id"])
    )


def _dataset_facts(pks: list[int]) -> dict[int, dict[str, Any]]:
    rows = Dataset.objects.filter(pk__in=pks).values("pk", "name", "slug", "classification")
    return {
        row["pk"]: {"label": row["name"], "slug": row["slug"], "classification": row["classification"]} for row in rows
    }


def _run_facts(pks: list[int]) -> dict[int, dict[str, Any]]:
    rows = Run.objects.filter(pk__in=pks).values(
        "pk", "run_uuid", "name", "status", "lifecycle_stage", "experiment_id", "experiment__name",
        "experiment__lifecycle_stage",
    )  # fmt: skip
    return {
        row["pk"]: {
            "label": row["name"] or row["run_uuid"][:8],
            "run_uuid": row["run_uuid"],
            "experiment_id": row["experiment_id"],
            "experiment": row["experiment__name"],
            "status": row["status"],
            "deleted": Lifecycle.DELETED in (row["lifecycle_stage"], row["experiment__lifecycle_stage"]),
        }
        for row in rows
    }


def _version_facts(pks: list[int]) -> dict[int, dict[str, Any]]:
    rows = ModelVersion.objects.filter(pk__in=pks).values("pk", "version", "current_stage", "registered_model__name")
    return {
        row["pk"]: {
            "label": f"{row['registered_model__name']} v{row['version']}",
            "model": row["registered_model__name"],
            "version": row["version"],
            "stage": row["current_stage"],
        }
        for row in rows
    }


def _endpoint_facts(pks: list[int]) -> dict[int, dict[str, Any]]:
    rows = Endpoint.objects.filter(pk__in=pks).values("pk", "name", "state", "environment__name")
    return {
        row["pk"]: {
            "label": row["name"],
            "name": row["name"],
            "state": row["state"],
            "environment": row["environment__name"],
        }
        for row in rows
    }


NODE_FACTS: dict[str, Callable[[list[int]], dict[int, dict[str, Any]]]] = {
    DATASET: _dataset_facts,
    RUN: _run_facts,
    MODEL_VERSION: _version_facts,
    ENDPOINT: _endpoint_facts,
}


def _edges(links: dict[tuple[Key, Key], dict[str, Any]], layers: dict[Key, int]) -> list[dict[str, Any]]:
    kept = {ends: facts for ends, facts in links.items() if ends[0] in layers and ends[1] in layers}
    flow_runs = {facts["run"] for facts in kept.values() if facts["kind"] == "flow"}
    lineage_runs = (
        {run.pk: run for run in LineageRun.objects.filter(pk__in=flow_runs).only("run_id", "job_namespace", "job_name")}
        if flow_runs
        else {}
    )
    edges = []
    for (source, target), facts in sorted(kept.items()):
        edge = {"source": node_id(*source), "target": node_id(*target), "kind": facts["kind"]}
        if facts["kind"] == "flow":
            run = lineage_runs.get(facts["run"])
            if run is None:
                continue
            edge |= {"run": str(run.run_id), "job": f"{run.job_namespace}/{run.job_name}", "runs": facts["runs"]}
        else:
            edge |= {key: value for key, value in facts.items() if key != "kind"}
        edges.append(edge)
    return edges
