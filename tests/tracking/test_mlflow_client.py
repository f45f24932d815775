"""The stock `mlflow` client against a live Causeway server, as a scientist would use it:
MLFLOW_TRACKING_URI pointing here and MLFLOW_TRACKING_TOKEN set to a personal token."""

import math
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException, RestException

from apps.catalog import services as catalog
from apps.catalog.models import Dataset
from apps.tracking.models import Experiment, LatestMetric, Run, RunInput
from tests.conftest import make_user

LIVE = pytest.mark.django_db(transaction=True)
pytestmark = LIVE


def error_code(exc: MlflowException) -> str:
    return exc.error_code


def test_fluent_logging_round_trips_params_metrics_tags_and_batches(users, client_for):
    client = client_for(users["scientist"])
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="baseline") as active:
        mlflow.log_param("max_depth", 5)
        mlflow.log_params({"learning_rate": "0.1", "model": "gbm"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("odd", float("nan"))
        mlflow.log_metric("far", float("inf"))
        mlflow.set_tag("team", "growth")
        mlflow.set_tags({"stage": "dev"})
        client.log_batch(
            active.info.run_id,
            metrics=[Metric("auc", 0.9, 1700000000000, 0)],
            params=[Param("seed", "42")],
            tags=[RunTag("note", "batch")],
        )
    run = client.get_run(active.info.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "baseline"
    assert run.info.user_id == "scientist"
    assert run.data.params == {"max_depth": "5", "learning_rate": "0.1", "model": "gbm", "seed": "42"}
    assert run.data.metrics["loss"] == pytest.approx(0.2)
    assert math.isnan(run.data.metrics["odd"])
    assert run.data.metrics["far"] == math.inf
    assert run.data.tags["team"] == "growth" and run.data.tags["note"] == "batch"
    history = client.get_metric_history(active.info.run_id, "loss")
    assert [point.step for point in history] == [0, 1, 2, 3, 4]
    assert history[0].value == 1.0


def test_run_user_comes_from_the_token_not_from_the_client(users, client_for, monkeypatch):
    client = client_for(users["scientist"])
    monkeypatch.setenv("LOGNAME", "someone-else")
    experiment_id = client.create_experiment("whose")
    run = client.create_run(experiment_id, tags={"mlflow.user": "someone-else"})
    assert run.info.user_id == "scientist"
    assert client.get_run(run.info.run_id).data.tags["mlflow.user"] == "scientist"


def test_artifacts_upload_list_and_download(users, client_for, tmp_path):
    client = client_for(users["scientist"])
    experiment_id = client.create_experiment("artifacts")
    run = client.create_run(experiment_id)
    source = tmp_path / "out"
    (source / "plots").mkdir(parents=True)
    (source / "report.txt").write_text("hello")
    (source / "plots" / "curve.csv").write_text("x,y\n1,2\n")
    payload = os.urandom(3 * 1024 * 1024)
    (source / "weights.bin").write_bytes(payload)
    client.log_artifacts(run.info.run_id, str(source))
    client.log_text(run.info.run_id, "{}", "config/params.json")

    top = sorted((item.path, item.is_dir) for item in client.list_artifacts(run.info.run_id))
    assert top == [("config", True), ("plots", True), ("report.txt", False), ("weights.bin", False)]
    assert [item.path for item in client.list_artifacts(run.info.run_id, "plots")] == ["plots/curve.csv"]
    target = tmp_path / "down"
    target.mkdir()
    local = client.download_artifacts(run.info.run_id, "", str(target))
    assert (target / "weights.bin").read_bytes() == payload
    assert Path(local, "plots", "curve.csv").read_text() == "x,y\n1,2\n"


def test_search_filters_orders_and_paginates(users, client_for):
    client = client_for(users["scientist"])
    experiment_id = client.create_experiment("search")
    for index in range(7):
        run = client.create_run(experiment_id, run_name=f"r{index}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", index / 10, 1700000000000 + index, 0)],
            params=[Param("model", "rf" if index % 2 else "lr")],
        )
        client.set_terminated(run.info.run_id, "FINISHED" if index < 6 else "FAILED")
    found = client.search_runs(
        [experiment_id],
        "metrics.acc > 0.15 and params.model = 'rf' and attributes.status = 'FINISHED'",
        order_by=["metrics.acc DESC"],
    )
    assert [run.info.run_name for run in found] == ["r5", "r3"]
    first = client.search_runs([experiment_id], "", order_by=["metrics.acc ASC"], max_results=3)
    assert [run.info.run_name for run in first] == ["r0", "r1", "r2"] and first.token
    second = client.search_runs(
        [experiment_id], "", order_by=["metrics.acc ASC"], max_results=3, page_token=first.token
    )
    assert [run.info.run_name for run in second] == ["r3", "r4", "r5"]
    with pytest.raises(MlflowException) as bad:
        client.search_runs([experiment_id], "metrics.acc >> 1")
    assert error_code(bad.value) == "INVALID_PARAMETER_VALUE"
    experiments = client.search_experiments(filter_string="name LIKE 'sea%'")
    assert [experiment.name for experiment in experiments] == ["search"]


def test_log_input_links_the_catalog_version(users, client_for, live_server):
    scientist = users["scientist"]
    dataset = catalog.create_dataset(by=scientist, name="Customers", visibility=Dataset.Visibility.ORGANISATION)
    client_for(scientist)
    frame = pd.DataFrame({"age": [31, 42], "churned": [0, 1]})
    source = f"{live_server.url}/catalog/datasets/{dataset.slug}/"
    logged = mlflow.data.from_pandas(frame, source=source, name="customers", targets="churned")
    with mlflow.start_run() as active:
        mlflow.log_input(logged, context="training")
    row = RunInput.objects.get(run__run_uuid=active.info.run_id)
    assert row.context == "training" and row.name == "customers"
    # No version yet: nothing to link; the dataset is only linked through a version.
    assert row.dataset_version_id is None
    run = MlflowClient().get_run(active.info.run_id)
    assert run.inputs.dataset_inputs[0].dataset.name == "customers"


def test_sklearn_model_logs_and_loads_back(users, client_for, tmp_path):
    from sklearn.linear_model import LogisticRegression

    client_for(users["scientist"])
    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    labels = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(features, labels)
    mlflow.set_experiment("models")
    with mlflow.start_run() as active:
        info = mlflow.sklearn.log_model(model, name="model", input_example=features[:2])
    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert list(loaded.predict(features)) == list(model.predict(features))
    by_run = mlflow.pyfunc.load_model(f"runs:/{active.info.run_id}/model")
    assert list(by_run.predict(features)) == list(model.predict(features))


def test_errors_use_mlflow_codes_and_write_nothing(users, client_for):
    client = client_for(users["scientist"])
    experiment_id = client.create_experiment("errors")
    with pytest.raises(MlflowException) as duplicate:
        client.create_experiment("errors")
    assert error_code(duplicate.value) == "RESOURCE_ALREADY_EXISTS"
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "alpha", "1")
    with pytest.raises(MlflowException) as changed:
        client.log_batch(run.info.run_id, metrics=[Metric("m", 1.0, 1, 0)], params=[Param("alpha", "2")])
    assert error_code(changed.value) == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in changed.value.message
    assert not LatestMetric.objects.filter(run__run_uuid=run.info.run_id, key="m").exists()
    with pytest.raises(MlflowException) as missing:
        client.get_run("0" * 32)
    assert error_code(missing.value) == "RESOURCE_DOES_NOT_EXIST"


def test_hidden_experiments_do_not_exist_and_readers_cannot_write(users, client_for):
    owner = users["scientist"]
    outsider = make_user("outsider", "Data scientists")
    owner_client = client_for(owner)
    private_id = owner_client.create_experiment("private-work")
    run = owner_client.create_run(private_id)
    shared_id = owner_client.create_experiment("shared-work")
    Experiment.objects.filter(pk=shared_id).update(visibility=Experiment.Visibility.ORGANISATION)

    outsider_client = client_for(outsider)
    for call in (
        lambda: outsider_client.get_experiment(private_id),
        lambda: outsider_client.get_run(run.info.run_id),
        lambda: outsider_client.log_metric(run.info.run_id, "x", 1.0),
    ):
        with pytest.raises((MlflowException, RestException)) as hidden:
            call()
        assert error_code(hidden.value) == "RESOURCE_DOES_NOT_EXIST"
    assert outsider_client.get_experiment_by_name("private-work") is None
    assert [e.name for e in outsider_client.search_experiments()] == ["shared-work"]
    assert outsider_client.get_experiment(shared_id).name == "shared-work"
    with pytest.raises(MlflowException) as denied:
        outsider_client.create_run(shared_id)
    assert error_code(denied.value) == "PERMISSION_DENIED"
    assert Run.objects.filter(experiment_id=shared_id).count() == 0
