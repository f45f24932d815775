"""Journey (a), experiments part: a scientist logs runs with the stock mlflow client, then in the
browser filters the runs table with MLflow's grammar, compares two runs and opens an artifact."""

import os

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from playwright.sync_api import expect

from apps.accounts import services as accounts
from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def log_runs(url: str, secret: str, tmp_path) -> str:
    os.environ["MLFLOW_TRACKING_TOKEN"] = secret
    try:
        client = MlflowClient(tracking_uri=url)
        experiment_id = client.create_experiment("churn-model")
        for name, depth, accuracy in (("shallow", 2, 0.71), ("medium", 5, 0.83), ("deep", 9, 0.79)):
            run = client.create_run(experiment_id, run_name=name)
            curve = [Metric("accuracy", accuracy * (step + 1) / 5, 1700000000000 + step, step) for step in range(5)]
            client.log_batch(run.info.run_id, metrics=curve, params=[Param("max_depth", str(depth))])
            notes = tmp_path / f"{name}.txt"
            notes.write_text(f"Depth {depth} reached {accuracy}.")
            client.log_artifact(run.info.run_id, str(notes))
            client.set_terminated(run.info.run_id)
        return experiment_id
    finally:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        mlflow.set_tracking_uri(None)


def test_scientist_filters_compares_and_reads_an_artifact(browser, live_server, screenshot, artifact_root, tmp_path):
    sam = make_user("sam", "Data scientists")
    _, secret = accounts.create_token(user=sam, name="notebook")
    experiment_id = log_runs(live_server.url, secret, tmp_path)

    page = sign_in(browser, live_server, "sam", PASSWORD)
    page.click("text=Experiments")
    page.click('[data-testid="experiment-row"] >> text=churn-model')
    page.wait_for_selector('[data-testid="run-row"]')
    assert page.locator('[data-testid="run-row"]').count() == 3
    page.fill("#run-filter", "metrics.accuracy > 0.75")
    page.press("#run-filter", "Enter")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(2)
    screenshot(page, "a5-runs-filtered")

    page.fill("#run-filter", "metrics.accuracy >> 1")
    page.press("#run-filter", "Enter")
    page.wait_for_selector('[data-testid="filter-error"]')

    page.goto(f"{live_server.url}/experiments/{experiment_id}/")
    page.locator('[data-testid="run-row"]:has-text("medium") input[name="runs"]').check()
    page.locator('[data-testid="run-row"]:has-text("deep") input[name="runs"]').check()
    page.click("[data-compare-button]")
    page.wait_for_selector('[data-testid="compare-params"]')
    assert "max_depth" in page.locator('[data-testid="compare-params"]').inner_text()
    page.wait_for_selector('[data-testid="compare-curves"] .js-plotly-plot')
    screenshot(page, "a6-runs-compared")

    page.goto(f"{live_server.url}/experiments/{experiment_id}/")
    page.click('[data-testid="run-row"] >> text=medium')
    page.wait_for_selector('[data-testid="params-table"]')
    page.click("text=Artifacts")
    page.click('[data-testid="artifact-file"] >> text=medium.txt')
    page.wait_for_selector('[data-testid="artifact-text"]:has-text("Depth 5 reached 0.83.")')
    screenshot(page, "a7-artifact-preview")
