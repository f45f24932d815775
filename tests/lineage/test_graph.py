"""The lineage graph around a dataset: layers, depth, hidden datasets, queries, the fragment."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts import services as accounts
from apps.catalog import services
from apps.catalog.models import LineageRun, LineageRunDataset
from apps.lineage.selectors import dataset_graph

pytestmark = pytest.mark.django_db


def flow(sources, targets, job="etl"):
    """One lineage run reading `sources` and writing `targets`."""
    run = LineageRun.objects.create(job_namespace="airflow", job_name=job)
    LineageRunDataset.objects.bulk_create(
        [LineageRunDataset(run=run, dataset=d, direction="input") for d in sources]
        + [LineageRunDataset(run=run, dataset=d, direction="output") for d in targets]
    )
    return run


@pytest.fixture
def chain(users):
    """raw → orders → daily → weekly → yearly, and orders → Salaries (private to the HR team)
    → payroll report, which is reachable only through the hidden dataset."""
    hr = accounts.create_team(name="HR", by=users["admin"])
    accounts.add_team_member(team=hr, user=users["engineer"], by=users["admin"])
    make = lambda name, **kw: services.create_dataset(by=users["engineer"], name=name, **kw)  # noqa: E731
    d = {name: make(name) for name in ("raw", "orders", "daily", "weekly", "yearly", "payroll report")}
    d["hidden"] = make("Salaries", visibility="private", team=hr)
    flow([d["raw"]], [d["orders"]], job="ingest")
    flow([d["orders"]], [d["daily"]], job="aggregate_daily")
    flow([d["daily"]], [d["weekly"]], job="aggregate_weekly")
    flow([d["weekly"]], [d["yearly"]], job="aggregate_yearly")
    flow([d["orders"]], [d["hidden"]], job="pay")
    flow([d["hidden"]], [d["payroll report"]], job="report")
    return d


def layers_of(graph):
    return {node["label"]: node["layer"] for node in graph["nodes"]}


def test_the_graph_is_layered_upstream_and_downstream_of_the_focus(users, chain):
    graph = dataset_graph(users["scientist"], chain["daily"], depth=3)
    assert layers_of(graph) == {"raw": -2, "orders": -1, "daily": 0, "weekly": 1, "yearly": 2}
    focus = [n for n in graph["nodes"] if n["is_focus"]]
    assert len(focus) == 1 and focus[0]["slug"] == chain["daily"].slug and focus[0]["kind"] == "dataset"
    pairs = {(e["source"], e["target"]) for e in graph["edges"]}
    ids = {name: f"dataset:{d.pk}" for name, d in chain.items()}
    assert pairs == {
        (ids["raw"], ids["orders"]),
        (ids["orders"], ids["daily"]),
        (ids["daily"], ids["weekly"]),
        (ids["weekly"], ids["yearly"]),
    }
    weekly_edge = next(e for e in graph["edges"] if e["target"] == ids["weekly"])
    assert weekly_edge["job"] == "airflow/aggregate_weekly" and weekly_edge["runs"] == 1


def test_a_hidden_dataset_in_the_middle_of_a_chain_is_omitted_with_what_lies_beyond_it(users, chain):
    graph = dataset_graph(users["scientist"], chain["orders"], depth=3)
    assert set(layers_of(graph)) == {"raw", "orders", "daily", "weekly", "yearly"}
    assert f"dataset:{chain['hidden'].pk}" not in json.dumps(graph)
    # The HR team member sees the hidden dataset and the report behind it.
    insider = layers_of(dataset_graph(users["engineer"], chain["orders"], depth=3))
    assert insider["Salaries"] == 1 and insider["payroll report"] == 2


def test_the_fragment_never_names_a_hidden_dataset(users, chain, client):
    client.force_login(users["scientist"])
    response = client.get(f"/lineage/datasets/{chain['orders'].slug}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "weekly" in html and "raw" in html
    for secret in ("Salaries", chain["hidden"].slug, "payroll report", chain["payroll report"].slug, "airflow/pay"):
        assert secret not in html


def test_depth_bounds_the_walk(users, chain):
    assert layers_of(dataset_graph(users["scientist"], chain["raw"], depth=2)) == {"raw": 0, "orders": 1, "daily": 2}
    assert layers_of(dataset_graph(users["scientist"], chain["raw"], depth=1)) == {"raw": 0, "orders": 1}
    assert layers_of(dataset_graph(users["scientist"], chain["raw"], depth=0)) == {"raw": 0}


def test_the_depth_parameter_of_the_fragment_is_bounded_too(users, chain, client):
    client.force_login(users["scientist"])
    html = client.get(f"/lineage/datasets/{chain['raw'].slug}/?depth=1").content.decode()
    assert "orders" in html and "daily" not in html
    assert client.get(f"/lineage/datasets/{chain['raw'].slug}/?depth=lots").status_code == 200


def test_an_invisible_or_unknown_focus_answers_404(users, chain, client):
    client.force_login(users["scientist"])
    assert client.get(f"/lineage/datasets/{chain['hidden'].slug}/").status_code == 404
    assert client.get("/lineage/datasets/no-such-dataset/").status_code == 404
    client.force_login(users["engineer"])
    assert client.get(f"/lineage/datasets/{chain['hidden'].slug}/").status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(chain, client):
    response = client.get(f"/lineage/datasets/{chain['orders'].slug}/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_fragment_carries_a_plotly_figure_and_links_to_the_neighbours(users, chain, client):
    client.force_login(users["scientist"])
    daily = chain["daily"]
    html = client.get(f"/lineage/datasets/{daily.slug}/").content.decode()
    match = re.search(rf'<script type="application/json" id="lineage-fig-{daily.pk}">(.*?)</script>', html, re.S)
    assert match, "the figure JSON is embedded for causeway.js"
    assert f'data-plotly-src="lineage-fig-{daily.pk}"' in html
    figure = json.loads(match.group(1))
    nodes = next(trace for trace in figure["data"] if trace.get("mode") == "markers+text")
    assert set(nodes["text"]) == {"raw", "orders", "daily", "weekly", "yearly"}
    xs = dict(zip(nodes["text"], nodes["x"], strict=True))
    assert xs["raw"] < xs["orders"] < xs["daily"] < xs["weekly"] < xs["yearly"], "upstream left, downstream right"
    assert any(trace.get("mode") == "lines" for trace in figure["data"])
    for name in ("orders", "weekly"):
        assert f'href="/catalog/datasets/{chain[name].slug}/"' in html


def test_a_dataset_without_lineage_says_so(users, client):
    lonely = services.create_dataset(by=users["scientist"], name="lonely")
    client.force_login(users["scientist"])
    html = client.get(f"/lineage/datasets/{lonely.slug}/").content.decode()
    assert "No lineage recorded" in html and "lineage-fig-" not in html


def test_many_runs_between_two_datasets_are_one_edge(users):
    a, b = (services.create_dataset(by=users["scientist"], name=n) for n in ("a", "b"))
    runs = [flow([a], [b], job="hourly") for _ in range(5)]
    graph = dataset_graph(users["scientist"], a)
    assert len(graph["edges"]) == 1
    assert graph["edges"][0]["runs"] == 5 and graph["edges"][0]["run"] == str(runs[-1].run_id)


def test_cycles_end_the_walk(users):
    a, b = (services.create_dataset(by=users["scientist"], name=n) for n in ("a", "b"))
    flow([a], [b])
    flow([b], [a])
    flow([a], [a])  # a run that rewrites what it reads
    graph = dataset_graph(users["scientist"], a, depth=5)
    assert layers_of(graph) == {"a": 0, "b": -1}
    assert len(graph["edges"]) == 2


def test_a_large_neighbourhood_is_cut_and_says_so(users):
    hub = services.create_dataset(by=users["scientist"], name="hub")
    leaves = [services.create_dataset(by=users["scientist"], name=f"leaf {i:02d}") for i in range(12)]
    flow([hub], leaves)
    graph = dataset_graph(users["scientist"], hub, max_nodes=5)
    assert len(graph["nodes"]) == 5 and graph["truncated"] is True
    assert len(graph["edges"]) == 4


def wide_graph(owner, width):
    """`width` datasets in each of three layers upstream and downstream of a focus."""
    make = lambda name: services.create_dataset(by=owner, name=name)  # noqa: E731
    focus = make("focus")
    previous = [focus]
    for layer in range(3):
        upstream = [make(f"up {layer} {i}") for i in range(width)]
        flow(upstream, previous)
        previous = upstream
    previous = [focus]
    for layer in range(3):
        downstream = [make(f"down {layer} {i}") for i in range(width)]
        flow(previous, downstream)
        previous = downstream
    return focus


def test_queries_do_not_grow_with_the_graph(users, client, django_assert_max_num_queries):
    scientist = users["scientist"]
    small, large = wide_graph(scientist, 1), wide_graph(scientist, 8)
    dataset_graph(scientist, small)  # the user's roles are cached on the user after the first read
    counts = []
    for focus in (small, large):
        with CaptureQueriesContext(connection) as queries:
            graph = dataset_graph(scientist, focus, depth=3)
        counts.append(len(queries))
    assert len(graph["nodes"]) == 1 + 6 * 8
    assert counts[0] == counts[1]
    # One per hop upstream, two per hop downstream (flows and the runs that read the datasets),
    # the nodes, the OpenLineage runs, and the user's teams.
    with django_assert_max_num_queries(12):
        dataset_graph(scientist, large, depth=3)
    client.force_login(scientist)
    with django_assert_max_num_queries(18):
        assert client.get(f"/lineage/datasets/{large.slug}/").status_code == 200


def test_the_lineage_api_returns_the_same_filtered_graph(users, api_client):
    from apps.catalog.models import LineageRun, LineageRunDataset
    from tests.catalog.factories import make_dataset

    source = make_dataset(users["scientist"], "Raw loans", profiled=False)
    hidden = make_dataset(users["admin"], "Hidden staging", visibility="private", profiled=False)
    target = make_dataset(users["scientist"], "Loan features", profiled=False)
    for inputs, outputs in (([source], [hidden]), ([hidden], [target]), ([source], [target])):
        run = LineageRun.objects.create(job_namespace="ns", job_name="job")
        for d in inputs:
            LineageRunDataset.objects.create(run=run, dataset=d, direction="input")
        for d in outputs:
            LineageRunDataset.objects.create(run=run, dataset=d, direction="output")
    api_client.force_login(users["engineer"])
    graph = api_client.get(f"/api/v1/lineage/datasets/{target.slug}", {"depth": 2}).json()
    assert {n["label"] for n in graph["nodes"]} == {"Raw loans", "Loan features"}
    assert "Hidden staging" not in str(graph)
    assert api_client.get(f"/api/v1/lineage/datasets/{hidden.slug}").status_code == 404
