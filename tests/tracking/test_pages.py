"""The experiment tracking pages: what they show, who may see them, what they cost."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts import services as accounts
from apps.accounts.roles import SCIENTIST
from apps.tracking import artifacts
from tests.catalog.factories import make_dataset
from tests.conftest import make_user
from tests.tracking.factories import add_input, add_logged_model, make_experiment, make_run

pytestmark = pytest.mark.django_db

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def owner(users):
    return users["scientist"]


@pytest.fixture
def other_scientist(db):
    return make_user("other-scientist", SCIENTIST)


@pytest.fixture
def experiment(owner):
    return make_experiment(
        owner,
        "churn-model",
        description="Predicts **churn**. <script>alert(1)</script>",
        tags={"project": "retention"},
    )


@pytest.fixture
def runs(experiment):
    return [
        make_run(
            experiment,
            name=f"run-{i}",
            params={"model": "xgboost" if i % 2 else "lightgbm", "max_depth": str(3 + i)},
            metrics={"rmse": [1.0, 0.8 - i / 10], "auc": 0.7 + i / 100},
            tags={
                "team_note": f"note {i}",
                "mlflow.source.name": "train.py",
                "mlflow.source.git.commit": "a1b2c3d4e5f6",
            },
        )
        for i in range(3)
    ]


@pytest.fixture
def artifact_store(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    return tmp_path / "artifacts"


def write_artifact(run, relative: str, content: bytes) -> None:
    key = artifacts.join(artifacts.root_key(run.artifact_uri), relative)
    artifacts.save_stream(key, [content])


def run_url(run, name="tracking:run"):
    return reverse(name, args=[run.experiment_id, run.run_uuid])


def query_count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


# --- Experiments list -------------------------------------------------------------------------


def test_experiment_list_shows_run_counts_to_the_owner(client, owner, experiment, runs):
    client.force_login(owner)
    response = client.get(reverse("tracking:experiment_list"))
    assert response.status_code == 200
    page = response.context["page"]
    assert [e.name for e in page] == ["churn-model"]
    assert page[0].run_count == 3
    assert "churn-model" in response.content.decode()


def test_experiment_list_hides_private_experiments_of_others(client, other_scientist, experiment):
    make_experiment(experiment.owner, "shared-benchmarks", visibility="organisation")
    client.force_login(other_scientist)
    names = [e.name for e in client.get(reverse("tracking:experiment_list")).context["page"]]
    assert names == ["shared-benchmarks"]


def test_experiment_list_searches_by_name_and_filters_by_owner_and_team(client, users, owner, experiment):
    team = accounts.create_team(name="Retention", by=users["admin"])
    make_experiment(users["engineer"], "fraud-scoring", visibility="organisation", team=team)
    client.force_login(owner)
    url = reverse("tracking:experiment_list")
    assert [e.name for e in client.get(url, {"q": "FRAUD"}).context["page"]] == ["fraud-scoring"]
    assert [e.name for e in client.get(url, {"owner": owner.pk}).context["page"]] == ["churn-model"]
    assert [e.name for e in client.get(url, {"team": team.pk}).context["page"]] == ["fraud-scoring"]


def test_deleted_experiments_show_only_when_asked(client, owner, experiment):
    make_experiment(owner, "old-attempt", deleted=True)
    client.force_login(owner)
    url = reverse("tracking:experiment_list")
    assert [e.name for e in client.get(url).context["page"]] == ["churn-model"]
    assert {e.name for e in client.get(url, {"deleted": "1"}).context["page"]} == {"churn-model", "old-attempt"}


def test_experiment_list_answers_htmx_with_the_results_only(client, owner, experiment):
    client.force_login(owner)
    response = client.get(reverse("tracking:experiment_list"), {"q": "churn"}, headers={"HX-Request": "true"})
    assert [t.name for t in response.templates][0] == "tracking/_experiment_results.html"


def test_experiment_list_query_count_does_not_grow_with_experiments(client, owner):
    client.force_login(owner)
    url = reverse("tracking:experiment_list")
    for i in range(3):
        make_run(make_experiment(owner, f"small-{i}", tags={"k": "v"}))
    few = query_count(client, url)
    for i in range(27):
        make_run(make_experiment(owner, f"large-{i}", tags={"k": "v"}))
    assert query_count(client, url) == few


# --- Experiment page ----------------------------------------------------------------------------


def test_experiment_page_shows_header_and_runs_to_the_owner(client, owner, experiment, runs):
    client.force_login(owner)
    response = client.get(reverse("tracking:experiment", args=[experiment.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>churn</strong>" in html
    assert "<script>alert(1)</script>" not in html
    assert "retention" in html
    assert reverse("audit:object_history", args=["tracking.experiment", experiment.pk]) in html
    assert len(response.context["rows"]) == 3


def test_runs_table_shows_the_chosen_columns_values(client, owner, experiment, runs):
    client.force_login(owner)
    response = client.get(
        reverse("tracking:experiment", args=[experiment.pk]),
        {"cols": "1", "col": ["params.model", "metrics.auc", "tags.team_note", "params.no-such-key"]},
    )
    assert [(c["kind"], c["key"]) for c in response.context["columns"]] == [
        ("params", "model"),
        ("metrics", "auc"),
        ("tags", "team_note"),
    ]
    row = next(r for r in response.context["rows"] if r["run"].pk == runs[1].pk)
    assert [cell["text"] for cell in row["cells"]] == ["xgboost", "0.71", "note 1"]


def test_runs_table_offers_metrics_and_params_as_columns_by_default(client, owner, experiment, runs):
    client.force_login(owner)
    response = client.get(reverse("tracking:experiment", args=[experiment.pk]))
    chosen = [(c["kind"], c["key"]) for c in response.context["columns"]]
    assert chosen == [("metrics", "auc"), ("metrics", "rmse"), ("params", "max_depth"), ("params", "model")]
    assert response.context["keys"]["tags"] == ["team_note"]  # mlflow.* tags are not offered


def test_runs_table_query_count_does_not_grow_with_runs(client, owner, experiment):
    client.force_login(owner)
    url = reverse("tracking:experiment", args=[experiment.pk])
    url += "?cols=1&col=params.model&col=metrics.rmse&col=tags.note&sort=metrics.rmse&dir=asc"

    def add_runs(count):
        for i in range(count):
            make_run(experiment, params={"model": "m"}, metrics={"rmse": i}, tags={"note": "x"})

    add_runs(3)
    few = query_count(client, url)
    add_runs(27)
    assert query_count(client, url) == few


def test_runs_table_sorts_by_a_metric(client, owner, experiment, runs):
    client.force_login(owner)
    url = reverse("tracking:experiment", args=[experiment.pk])
    ascending = client.get(url, {"sort": "metrics.auc", "dir": "asc"}).context["rows"]
    descending = client.get(url, {"sort": "metrics.auc", "dir": "desc"}).context["rows"]
    assert [r["run"].name for r in ascending] == ["run-0", "run-1", "run-2"]
    assert [r["run"].name for r in descending] == ["run-2", "run-1", "run-0"]


def test_runs_table_filters_with_the_mlflow_grammar(client, owner, experiment, runs):
    client.force_login(owner)
    response = client.get(reverse("tracking:experiment", args=[experiment.pk]), {"filter": "params.model = 'xgboost'"})
    assert response.context["error"] is None
    assert [r["run"].name for r in response.context["rows"]] == ["run-1"]


def test_a_bad_filter_shows_an_inline_error_not_a_500(client, owner, experiment, runs):
    client.force_login(owner)
    response = client.get(reverse("tracking:experiment", args=[experiment.pk]), {"filter": "metrics.rmse <<< oops"})
    assert response.status_code == 200
    assert response.context["error"]
    assert 'data-testid="filter-error"' in response.content.decode()


def test_runs_table_answers_htmx_with_the_table_only(client, owner, experiment, runs):
    client.force_login(owner)
    response = client.get(reverse("tracking:experiment", args=[experiment.pk]), headers={"HX-Request": "true"})
    assert [t.name for t in response.templates][0] == "tracking/_runs_table.html"


# --- Run page ---------------------------------------------------------------------------------


def test_run_page_shows_params_metrics_charts_and_tags(client, owner, runs):
    run = runs[0]
    add_logged_model(run, "churn-classifier")
    client.force_login(owner)
    response = client.get(run_url(run))
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["params"] == {"max_depth": "3", "model": "lightgbm"}
    assert [m["metric"].key for m in response.context["metrics"]] == ["auc", "rmse"]
    assert [f["key"] for f in response.context["figures"]] == ["rmse"]  # auc was logged once
    assert 'data-plotly-src="metric-fig-' in html
    assert "train.py" in html and "a1b2c3d4e5" in html  # source and commit in the header
    assert [t.key for t in response.context["user_tags"]] == ["team_note"]
    assert 'id="system-tags"' in html  # mlflow.* tags sit behind a toggle
    assert "churn-classifier" in html


def test_run_charts_can_use_wall_clock_time(client, owner, runs):
    client.force_login(owner)
    response = client.get(run_url(runs[0], "tracking:run_charts"), {"x": "time"})
    assert response.status_code == 200
    assert response.context["x_axis"] == "time"
    assert "2023-11-14T" in response.context["figures"][0]["json"]


def test_run_inputs_link_to_catalog_datasets_the_user_may_see(client, owner, other_scientist, users, runs):
    visible = make_dataset(owner, "Customers", visibility="organisation")
    hidden = make_dataset(users["engineer"], "Secret scores", visibility="private")
    experiment = runs[0].experiment
    experiment.visibility = "organisation"
    experiment.save()
    add_input(runs[0], name="customers", dataset_version=visible.current_version, digest="d1")
    add_input(runs[0], name="scores", dataset_version=hidden.current_version, digest="d2")
    client.force_login(other_scientist)
    response = client.get(run_url(runs[0]))
    html = response.content.decode()
    assert reverse("catalog:dataset", args=[visible.slug]) in html
    assert reverse("catalog:dataset", args=[hidden.slug]) not in html
    assert "a catalog dataset you cannot see" in html


def test_run_url_under_another_experiment_is_404(client, owner, runs):
    client.force_login(owner)
    other = make_experiment(owner, "elsewhere")
    assert client.get(reverse("tracking:run", args=[other.pk, runs[0].run_uuid])).status_code == 404


def test_run_page_query_count_does_not_grow_with_history(client, owner, experiment):
    client.force_login(owner)
    small = make_run(experiment, params={"a": 1}, metrics={"loss": [1.0, 0.5]}, tags={"t": "x"})
    large = make_run(
        experiment,
        params={f"p{i}": i for i in range(20)},
        metrics={f"m{i}": [float(s) for s in range(50)] for i in range(10)},
        tags={f"t{i}": "x" for i in range(10)},
    )
    assert query_count(client, run_url(large)) == query_count(client, run_url(small))


# --- Artifacts --------------------------------------------------------------------------------


def test_artifact_browser_lists_folders_and_files(client, owner, runs, artifact_store):
    run = runs[0]
    write_artifact(run, "model/MLmodel", b"flavors:\n  sklearn: {}\n")
    write_artifact(run, "notes.md", b"# Findings")
    client.force_login(owner)
    url = run_url(run, "tracking:run_artifacts")
    root = client.get(url).content.decode()
    assert "model" in root and "notes.md" in root
    folder = client.get(url, {"path": "model"})
    assert "MLmodel" in folder.content.decode()
    assert folder.context["crumbs"] == [{"name": "model", "path": "model"}]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("model/MLmodel", b"flavors:\n  sklearn: {}\n", "sklearn: {}"),
        ("metrics.json", b'{"b":1,"a":[1,2]}', "&quot;a&quot;: [\n    1,"),
        ("README.md", b"# Findings\n\n*good*", "<em>good</em>"),
        ("conf.yaml", b"lr: 0.1\n", "lr: 0.1"),
    ],
)
def test_text_artifacts_are_previewed(client, owner, runs, artifact_store, name, content, expected):
    write_artifact(runs[0], name, content)
    client.force_login(owner)
    response = client.get(run_url(runs[0], "tracking:run_artifact_preview"), {"path": name})
    assert response.status_code == 200
    assert expected in response.content.decode()


def test_csv_artifacts_are_previewed_as_a_table_of_the_first_rows(client, owner, runs, artifact_store):
    rows = "id,score\n" + "".join(f"{i},{i / 10}\n" for i in range(500))
    write_artifact(runs[0], "predictions.csv", rows.encode())
    client.force_login(owner)
    response = client.get(run_url(runs[0], "tracking:run_artifact_preview"), {"path": "predictions.csv"})
    preview = response.context["preview"]
    assert preview["header"] == ["id", "score"]
    assert len(preview["rows"]) == 100 and preview["more_rows"]
    assert 'data-testid="artifact-table"' in response.content.decode()


def test_large_text_artifacts_are_previewed_up_to_a_cap(client, owner, runs, artifact_store):
    write_artifact(runs[0], "train.log", b"x" * (300 * 1024))
    client.force_login(owner)
    preview = client.get(run_url(runs[0], "tracking:run_artifact_preview"), {"path": "train.log"}).context["preview"]
    assert preview["truncated"] and len(preview["text"]) == 256 * 1024


@pytest.mark.parametrize("path", ["../other/secret.txt", "a/../../b", "/etc/passwd"])
def test_artifact_views_refuse_paths_that_leave_the_run(client, owner, runs, artifact_store, path):
    client.force_login(owner)
    for name in ("tracking:run_artifacts", "tracking:run_artifact_preview", "tracking:run_artifact_raw"):
        assert client.get(run_url(runs[0], name), {"path": path}).status_code in (400, 404), name


def test_image_artifacts_are_served_inline_with_nosniff(client, owner, runs, artifact_store):
    write_artifact(runs[0], "plots/roc.png", PNG)
    client.force_login(owner)
    response = client.get(run_url(runs[0], "tracking:run_artifact_raw"), {"path": "plots/roc.png"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content) == PNG


def test_svg_artifacts_are_never_served_inline(client, owner, runs, artifact_store):
    write_artifact(runs[0], "plot.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    client.force_login(owner)
    response = client.get(run_url(runs[0], "tracking:run_artifact_raw"), {"path": "plot.svg"})
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    preview = client.get(run_url(runs[0], "tracking:run_artifact_preview"), {"path": "plot.svg"}).content.decode()
    assert "<img" not in preview and "<svg" not in preview


def test_missing_artifacts_are_404(client, owner, runs, artifact_store):
    client.force_login(owner)
    assert client.get(run_url(runs[0], "tracking:run_artifact_raw"), {"path": "nope.txt"}).status_code == 404
    assert client.get(run_url(runs[0], "tracking:run_artifact_preview"), {"path": "nope.txt"}).status_code == 404


# --- Compare ----------------------------------------------------------------------------------


def compare_url(*runs):
    return reverse("tracking:compare") + "?" + "&".join(f"runs={run.run_uuid}" for run in runs)


def test_compare_shows_runs_from_several_experiments(client, owner, runs):
    elsewhere = make_run(
        make_experiment(owner, "churn-v2"), name="v2", params={"model": "catboost"}, metrics={"rmse": [0.9, 0.5]}
    )
    client.force_login(owner)
    response = client.get(compare_url(runs[0], runs[1], elsewhere) + "&x=rmse&y=auc")
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["x_key"] == "rmse" and response.context["y_key"] == "auc"
    assert [figure["key"] for figure in response.context["curves"]] == ["rmse"]
    assert response.context["parallel_json"] and response.context["scatter_json"]
    assert 'data-plotly-src="compare-parallel"' in html and "churn-v2" in html


def test_compare_highlights_the_params_that_differ(client, owner, runs):
    client.force_login(owner)
    rows = {row["key"]: row for row in client.get(compare_url(*runs)).context["param_rows"]}
    assert rows["model"]["differs"] and rows["max_depth"]["differs"]
    same = client.get(compare_url(runs[0], runs[2])).context["param_rows"]
    assert {row["key"]: row["differs"] for row in same} == {"max_depth": True, "model": False}


@pytest.mark.parametrize("count", [0, 1, 11])
def test_compare_needs_two_to_ten_runs(client, owner, experiment, count):
    client.force_login(owner)
    chosen = [make_run(experiment) for _ in range(count)]
    response = client.get(compare_url(*chosen) if chosen else reverse("tracking:compare"))
    assert response.status_code == 400
    assert 'data-testid="compare-invalid"' in response.content.decode()


def test_compare_with_a_hidden_run_is_404(client, owner, other_scientist, runs):
    theirs = make_run(make_experiment(other_scientist, "their-private"))
    client.force_login(owner)
    assert client.get(compare_url(runs[0], theirs)).status_code == 404
    assert client.get(compare_url(runs[0], runs[1]) + "&runs=" + "0" * 32).status_code == 404


# --- Who may see what -------------------------------------------------------------------------


def page_urls(experiment, run):
    return [
        reverse("tracking:experiment", args=[experiment.pk]),
        run_url(run),
        run_url(run, "tracking:run_charts"),
        run_url(run, "tracking:run_artifacts"),
        run_url(run, "tracking:run_artifact_preview") + "?path=notes.txt",
        run_url(run, "tracking:run_artifact_raw") + "?path=notes.txt",
    ]


def test_another_scientist_gets_404_on_a_private_experiment_and_its_runs(
    client, owner, other_scientist, experiment, runs, artifact_store
):
    write_artifact(runs[0], "notes.txt", b"private")
    mine = make_run(make_experiment(other_scientist, "mine"))
    client.force_login(other_scientist)
    for url in page_urls(experiment, runs[0]) + [compare_url(runs[0], mine)]:
        assert client.get(url).status_code == 404, url


def test_team_members_and_admins_see_a_private_experiment(client, users, owner, runs):
    team = accounts.create_team(name="Churn", by=users["admin"])
    accounts.add_team_member(team=team, user=users["engineer"], by=users["admin"])
    experiment = runs[0].experiment
    experiment.team = team
    experiment.save()
    for who in ("engineer", "admin"):
        client.force_login(users[who])
        assert client.get(reverse("tracking:experiment", args=[experiment.pk])).status_code == 200, who
        assert client.get(run_url(runs[0])).status_code == 200, who


def test_anonymous_visitors_are_sent_to_sign_in(client, experiment, runs):
    urls = [reverse("tracking:experiment_list"), compare_url(*runs[:2]), *page_urls(experiment, runs[0])]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_runs_table_sorts_by_keys_that_need_quoting(client, owner, experiment):
    for loss in (0.3, 0.1, 0.2):
        make_run(experiment, name=f"loss-{loss}", metrics={"val.loss": loss})
    client.force_login(owner)
    response = client.get(
        reverse("tracking:experiment", args=[experiment.pk]), {"sort": "metrics.val.loss", "dir": "asc"}
    )
    assert response.context["error"] is None
    assert [r["run"].name for r in response.context["rows"]] == ["loss-0.1", "loss-0.2", "loss-0.3"]


def test_a_folder_is_not_previewed_or_served_as_a_file(client, owner, runs, artifact_store):
    write_artifact(runs[0], "model/model.pkl", b"\x00\x01")
    client.force_login(owner)
    assert client.get(run_url(runs[0], "tracking:run_artifact_preview"), {"path": "model"}).status_code == 404
    assert client.get(run_url(runs[0], "tracking:run_artifact_raw"), {"path": "model"}).status_code == 404
