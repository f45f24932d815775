"""The lineage graph across apps: datasets → the runs that read their versions → the model
versions registered from those runs, and back. Hidden runs, versions and datasets are left out
and never walked through; queries stay constant as the graph grows."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.roles import SCIENTIST
from apps.lineage import charts
from apps.lineage.selectors import MAX_RUNS_PER_HOP, dataset_graph, run_graph, version_graph
from tests.conftest import make_user
from tests.lineage import builders as b

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewers(users):
    """The matrix: the owner of everything, another data scientist, a platform admin."""
    return {"owner": users["scientist"], "other": make_user("other-scientist", SCIENTIST), "admin": users["admin"]}


@pytest.fixture
def estate(viewers):
    """raw events → features (organisation-wide) and raw events → salaries (private);
    train-a (open lab) reads features v2 → churn v1;
    train-b (closed lab, private) reads features v1 → churn v2 (the model is organisation-wide);
    train-c (open lab) reads features v2 → secret v1 (a private model);
    train-d (open lab) reads salaries v1 → churn v3."""
    owner = viewers["owner"]
    d = {
        "raw": b.dataset(owner, "raw events"),
        "features": b.dataset(owner, "features"),
        "salaries": b.dataset(owner, "salaries", visibility="private"),
    }
    b.flow([d["raw"]], [d["features"]], job="build_features")
    b.flow([d["raw"]], [d["salaries"]], job="payroll")
    open_lab, closed_lab = b.experiment(owner, "open lab"), b.experiment(owner, "closed lab", visibility="private")
    runs = {
        "a": b.run_reading(open_lab, "train-a", (d["features"], 2)),
        "b": b.run_reading(closed_lab, "train-b", (d["features"], 1)),
        "c": b.run_reading(open_lab, "train-c", (d["features"], 2)),
        "d": b.run_reading(open_lab, "train-d", d["salaries"]),
    }
    churn, secret = b.registered_model(owner, "churn"), b.registered_model(owner, "secret", visibility="private")
    versions = {
        "churn v1": b.register(churn, runs["a"], stage="Production"),
        "churn v2": b.register(churn, runs["b"]),
        "secret v1": b.register(secret, runs["c"]),
        "churn v3": b.register(churn, runs["d"]),
    }
    return {"datasets": d, "runs": runs, "versions": versions}


def labels(graph):
    return {node["label"]: node["layer"] for node in graph["nodes"]}


EVERYTHING_FROM_RAW = {
    "raw events": 0,
    "features": 1,
    "salaries": 1,
    "train-a": 2,
    "train-b": 2,
    "train-c": 2,
    "train-d": 2,
    "churn v1": 3,
    "churn v2": 3,
    "secret v1": 3,
    "churn v3": 3,
}


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        ("owner", EVERYTHING_FROM_RAW),
        ("admin", EVERYTHING_FROM_RAW),
        # salaries is hidden, so train-d and churn v3 behind it are not reached; train-b is in a
        # private experiment, so churn v2 behind it is not reached; secret v1 is a hidden model.
        ("other", {"raw events": 0, "features": 1, "train-a": 2, "train-c": 2, "churn v1": 3}),
    ],
)
def test_a_dataset_leads_to_the_runs_that_read_it_and_the_versions_registered_from_them(
    viewers, estate, viewer, expected
):
    graph = dataset_graph(viewers[viewer], estate["datasets"]["raw"], depth=3)
    assert labels(graph) == expected


def test_nodes_are_typed_and_edges_say_how_they_are_linked(viewers, estate):
    graph = dataset_graph(viewers["other"], estate["datasets"]["features"], depth=2)
    kinds = {node["label"]: node["kind"] for node in graph["nodes"]}
    assert kinds == {
        "raw events": "dataset",
        "features": "dataset",
        "train-a": "run",
        "train-c": "run",
        "churn v1": "model_version",
    }
    by_label = {node["label"]: node for node in graph["nodes"]}
    run_a = by_label["train-a"]
    assert run_a["run_uuid"] == estate["runs"]["a"].run_uuid and run_a["experiment"] == "open lab"
    assert {"model": "churn", "version": 1, "stage": "Production"}.items() <= by_label["churn v1"].items()
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    reading = edges[(by_label["features"]["id"], run_a["id"])]
    assert reading["kind"] == "input" and reading["version"] == 2 and reading["context"] == "training"
    assert edges[(run_a["id"], by_label["churn v1"]["id"])]["kind"] == "registered"
    assert edges[(by_label["raw events"]["id"], by_label["features"]["id"])]["kind"] == "flow"


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        ("owner", {"raw events": -3, "salaries": -2, "train-d": -1, "churn v3": 0}),
        ("admin", {"raw events": -3, "salaries": -2, "train-d": -1, "churn v3": 0}),
        # The run is visible, the dataset it read is not: nothing upstream of it is reached.
        ("other", {"train-d": -1, "churn v3": 0}),
    ],
)
def test_a_model_version_leads_back_to_its_run_and_the_datasets_it_read(viewers, estate, viewer, expected):
    assert labels(version_graph(viewers[viewer], estate["versions"]["churn v3"], depth=3)) == expected


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        ("owner", {"churn v2": 0, "train-b": -1, "features": -2, "raw events": -3}),
        ("admin", {"churn v2": 0, "train-b": -1, "features": -2, "raw events": -3}),
        # The version is visible (its model is organisation-wide) but the run is not.
        ("other", {"churn v2": 0}),
    ],
)
def test_a_hidden_run_is_not_walked_through_from_its_model_version(viewers, estate, viewer, expected):
    graph = version_graph(viewers[viewer], estate["versions"]["churn v2"], depth=3)
    assert labels(graph) == expected
    if viewer == "other":
        assert estate["runs"]["b"].run_uuid not in json.dumps(graph)


def test_a_run_shows_its_inputs_upstream_and_its_versions_downstream(viewers, estate):
    graph = run_graph(viewers["other"], estate["runs"]["c"], depth=3)
    # secret v1 is the run's only version, and its model is private.
    assert labels(graph) == {"raw events": -2, "features": -1, "train-c": 0}
    assert labels(run_graph(viewers["owner"], estate["runs"]["c"], depth=3)) == {
        "raw events": -2,
        "features": -1,
        "train-c": 0,
        "secret v1": 1,
    }


def test_a_deleted_model_version_is_not_in_the_graph(viewers, estate):
    b.register(b.registered_model(viewers["owner"], "retired"), estate["runs"]["a"], deleted=True)
    graph = run_graph(viewers["admin"], estate["runs"]["a"], depth=1)
    assert set(labels(graph)) == {"features", "train-a", "churn v1"}


def test_depth_counts_every_kind_of_hop(viewers, estate):
    raw, other = estate["datasets"]["raw"], viewers["other"]
    assert set(labels(dataset_graph(other, raw, depth=2))) == {"raw events", "features", "train-a", "train-c"}
    assert set(labels(dataset_graph(other, raw, depth=1))) == {"raw events", "features"}


def test_the_runs_of_a_popular_dataset_are_capped_those_with_versions_first(viewers):
    owner = viewers["owner"]
    popular = b.dataset(owner, "popular")
    lab = b.experiment(owner, "sweep")
    runs = [b.run_reading(lab, f"sweep-{i:02d}", popular) for i in range(MAX_RUNS_PER_HOP + 8)]
    model = b.registered_model(owner, "best")
    b.register(model, runs[0])  # the oldest run, registered
    graph = dataset_graph(owner, popular, depth=2)
    drawn = [node for node in graph["nodes"] if node["kind"] == "run"]
    assert len(drawn) == MAX_RUNS_PER_HOP and graph["truncated"] is True
    assert "sweep-00" in {node["label"] for node in drawn} and "best v1" in labels(graph)
    assert "sweep-19" in {node["label"] for node in drawn}, "then the newest"


# --- Queries -------------------------------------------------------------------------------------


def wide(owner, width):
    """`width` upstream datasets → a focus dataset → `width` derived datasets and `width` runs
    reading the focus (and the upstream datasets), each run with one registered version."""
    focus = b.dataset(owner, f"focus {width}")
    upstream = [b.dataset(owner, f"up {width} {i}") for i in range(width)]
    b.flow(upstream, [focus])
    b.flow([focus], [b.dataset(owner, f"down {width} {i}") for i in range(width)])
    lab = b.experiment(owner, f"lab {width}")
    model = b.registered_model(owner, f"model {width}")
    runs = [b.run_reading(lab, f"run {width} {i}", focus, *upstream) for i in range(width)]
    versions = [b.register(model, run) for run in runs]
    return focus, runs[0], versions[0]


def counted(read, user, focus):
    with CaptureQueriesContext(connection) as queries:
        graph = read(user, focus, depth=3)
    return len(queries), graph


@pytest.mark.parametrize("viewer", ["owner", "other", "admin"])
def test_queries_stay_constant_as_the_graph_grows(viewers, viewer):
    user = viewers[viewer]
    small, large = wide(viewers["owner"], 1), wide(viewers["owner"], 8)
    dataset_graph(user, small[0])  # roles and team ids are cached on the user after the first read
    for read, index in ((dataset_graph, 0), (run_graph, 1), (version_graph, 2)):
        (few, small_graph), (many, large_graph) = counted(read, user, small[index]), counted(read, user, large[index])
        assert len(large_graph["nodes"]) > len(small_graph["nodes"]), read.__name__
        assert few == many, read.__name__


def test_query_budgets_per_hop(viewers, django_assert_max_num_queries):
    other = viewers["other"]
    focus, run, version = wide(viewers["owner"], 8)
    dataset_graph(other, focus)  # roles and team ids are cached on the user after the first read
    # The user's teams (the catalog's filter); upstream: flows per hop until none are found (2);
    # downstream: flows and run inputs from the datasets of each hop (2 + 2), versions from the
    # runs (1), endpoints serving the versions (1); then datasets, runs and versions (3) and the
    # OpenLineage runs on the edges (1).
    with django_assert_max_num_queries(13):
        graph = dataset_graph(other, focus, depth=3)
    assert {node["kind"] for node in graph["nodes"]} == {"dataset", "run", "model_version"}
    assert len(graph["nodes"]) == 1 + 8 + 8 + 8 + 8
    # The run: its inputs, then flows upstream of them (2 hops); its versions and their
    # endpoints; nodes and edges.
    with django_assert_max_num_queries(9):
        run_graph(other, run, depth=3)
    # The version: its run, the run's inputs, flows upstream of them; its endpoints; nodes and edges.
    with django_assert_max_num_queries(9):
        version_graph(other, version, depth=3)


# --- Fragments and API ---------------------------------------------------------------------------


def figure_of(html, figure_id):
    match = re.search(rf'<script type="application/json" id="{figure_id}">(.*?)</script>', html, re.S)
    assert match, "the figure JSON is embedded for causeway.js"
    return json.loads(match.group(1))


def test_the_dataset_fragment_draws_runs_and_versions_with_their_own_markers(viewers, estate, client):
    client.force_login(viewers["owner"])
    raw = estate["datasets"]["raw"]
    html = client.get(f"/lineage/datasets/{raw.slug}/").content.decode()
    traces = {t["name"]: t for t in figure_of(html, f"lineage-fig-{raw.pk}")["data"] if t["mode"] == "markers+text"}
    assert set(traces) == {"Datasets", "Runs", "Model versions"}
    assert len({t["marker"]["symbol"] for t in traces.values()}) == 3
    assert set(traces["Runs"]["text"]) == {"train-a", "train-b", "train-c", "train-d"}
    run_a = estate["runs"]["a"]
    assert f'href="/experiments/{run_a.experiment_id}/runs/{run_a.run_uuid}/"' in html
    assert 'href="/models/churn/versions/1/"' in html
    assert f"/experiments/{run_a.experiment_id}/runs/{run_a.run_uuid}/" in traces["Runs"]["customdata"]


def test_the_dataset_fragment_never_names_a_hidden_run_or_version(viewers, estate, client):
    client.force_login(viewers["other"])
    html = client.get(f"/lineage/datasets/{estate['datasets']['raw'].slug}/").content.decode()
    assert "train-a" in html and "churn v1" in html
    for secret in ("train-b", "train-d", "closed lab", "churn v2", "churn v3", "secret v1", "salaries"):
        assert secret not in html
    for run in (estate["runs"]["b"], estate["runs"]["d"]):
        assert run.run_uuid not in html


def test_the_run_fragment_links_its_datasets_and_versions(viewers, estate, client):
    client.force_login(viewers["other"])
    run_a = estate["runs"]["a"]
    response = client.get(f"/lineage/runs/{run_a.run_uuid}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="lineage-fig-run-{run_a.pk}"' in html
    assert f'href="/catalog/datasets/{estate["datasets"]["features"].slug}/"' in html
    assert 'href="/models/churn/versions/1/"' in html
    assert "This run" in figure_of(html, f"lineage-fig-run-{run_a.pk}")["layout"]["xaxis"]["ticktext"]


def test_the_version_fragment_leads_back_to_the_datasets(viewers, estate, client):
    client.force_login(viewers["other"])
    response = client.get("/lineage/models/churn/versions/1/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "train-a" in html and "features" in html and "raw events" in html


def test_a_model_version_link_is_left_out_when_the_registry_has_no_page(monkeypatch):
    from django.urls import NoReverseMatch

    def no_registry_pages(name, *args, **kwargs):
        raise NoReverseMatch(name)

    monkeypatch.setattr(charts, "reverse", no_registry_pages)
    assert charts.node_url({"kind": "model_version", "model": "churn", "version": 1}) is None
    assert charts.node_url({"kind": "deployment", "label": "later"}) is None


@pytest.mark.parametrize("viewer", ["owner", "other", "admin"])
def test_hidden_roots_answer_404_in_fragments_and_the_api(viewers, estate, client, viewer):
    client.force_login(viewers[viewer])
    hidden_to_other = viewer == "other"
    expected = 404 if hidden_to_other else 200
    run_b = estate["runs"]["b"]
    assert client.get(f"/lineage/runs/{run_b.run_uuid}/").status_code == expected
    assert client.get(f"/api/v1/lineage/runs/{run_b.run_uuid}").status_code == expected
    assert client.get("/lineage/models/secret/versions/1/").status_code == expected
    assert client.get("/api/v1/lineage/models/secret/versions/1").status_code == expected
    assert client.get(f"/lineage/datasets/{estate['datasets']['salaries'].slug}/").status_code == expected
    # Unknown ones answer the same, whoever asks.
    assert client.get("/lineage/runs/0123456789abcdef0123456789abcdef/").status_code == 404
    assert client.get("/api/v1/lineage/runs/not-a-run").status_code == 404
    assert client.get("/lineage/models/churn/versions/99/").status_code == 404
    assert client.get("/api/v1/lineage/models/churn/versions/99999999999999999999").status_code == 404


def test_a_deleted_version_answers_404(viewers, estate, client):
    b.register(b.registered_model(viewers["owner"], "retired"), estate["runs"]["a"], deleted=True)
    client.force_login(viewers["owner"])
    assert client.get("/lineage/models/retired/versions/1/").status_code == 404
    assert client.get("/api/v1/lineage/models/retired/versions/1").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(estate, client):
    response = client.get(f"/lineage/runs/{estate['runs']['a'].run_uuid}/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get("/api/v1/lineage/models/churn/versions/1").status_code in (401, 403)


def test_the_api_returns_the_filtered_graphs(viewers, estate, api_client):
    api_client.force_login(viewers["other"])
    run_graph_json = api_client.get(f"/api/v1/lineage/runs/{estate['runs']['c'].run_uuid}", {"depth": 3}).json()
    assert {n["label"] for n in run_graph_json["nodes"]} == {"raw events", "features", "train-c"}
    assert run_graph_json["focus"] == f"run:{estate['runs']['c'].pk}"
    version_json = api_client.get("/api/v1/lineage/models/churn/versions/3").json()
    assert {n["label"] for n in version_json["nodes"]} == {"train-d", "churn v3"}
    assert "salaries" not in json.dumps(version_json)
    dataset_json = api_client.get(f"/api/v1/lineage/datasets/{estate['datasets']['features'].slug}").json()
    assert {n["kind"] for n in dataset_json["nodes"]} == {"dataset", "run", "model_version"}


def test_the_run_page_loads_the_lineage_fragment(viewers, estate, client):
    client.force_login(viewers["owner"])
    run_a = estate["runs"]["a"]
    html = client.get(f"/experiments/{run_a.experiment_id}/runs/{run_a.run_uuid}/").content.decode()
    assert f'hx-get="/lineage/runs/{run_a.run_uuid}/"' in html


def _serve(version, name, owner):
    from apps.deployments.models import Endpoint, EndpointRevision, Environment

    environment, _ = Environment.objects.get_or_create(name="production")
    endpoint = Endpoint.objects.create(name=name, environment=environment, owner=owner, current_version=version)
    EndpointRevision.objects.create(endpoint=endpoint, model_version=version)
    return endpoint


@pytest.mark.parametrize(("viewer", "expected"), [("owner", {"churn-api", "secret-api"}), ("other", {"churn-api"})])
def test_model_versions_lead_to_the_endpoints_that_serve_them(viewers, estate, viewer, expected):
    versions = estate["versions"]
    _serve(versions["churn v1"], "churn-api", viewers["owner"])
    _serve(versions["secret v1"], "secret-api", viewers["owner"])
    graph = dataset_graph(viewers[viewer], estate["datasets"]["features"], depth=3)
    endpoints = {node["label"]: node["layer"] for node in graph["nodes"] if node["kind"] == "endpoint"}
    assert set(endpoints) == expected and set(endpoints.values()) == {3}
    served = version_graph(viewers[viewer], versions["churn v1"], depth=1)
    assert [(edge["kind"], edge["live"]) for edge in served["edges"] if edge["kind"] == "deployed"] == [
        ("deployed", True)
    ]
