"""The demo data `make run` loads: catalog, real scikit-learn runs logged through the tracking
services, and models registered from their logged models with cards at three levels of
completeness. Training takes a while, so the demo is loaded once for the module (one module, so
one load), twice over as a second `make run` would, inside a transaction rolled back at the
end; each test reads what it left."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from apps.accounts.models import Team, User
from apps.catalog.models import Dataset
from apps.deployments import selectors as deployment_selectors
from apps.deployments.models import Approval, DeploymentRequest, Endpoint, Environment
from apps.registry import cards
from apps.registry.models import (
    ModelAlias,
    ModelCard,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
)
from apps.tracking import artifacts, demo
from apps.tracking.models import Experiment, LatestMetric, LoggedModel, Metric, Param, Run, RunInput, RunTag

COUNTED = [
    User,
    Team,
    Experiment,
    Run,
    Param,
    RunTag,
    Metric,
    LatestMetric,
    RunInput,
    LoggedModel,
    RegisteredModel,
    RegisteredModelTag,
    ModelVersion,
    ModelVersionTag,
    ModelAlias,
    ModelCard,
    Environment,
    DeploymentRequest,
    Approval,
    Endpoint,
]


@dataclass
class LoadedDemo:
    counts_after_first_load: dict[str, int]
    counts_after_second_load: dict[str, int]


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker, tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    storages = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root / "artifacts")},
        },
    }
    with (
        django_db_blocker.unblock(),
        override_settings(
            STORAGES=storages, CATALOG_DATA_ROOT=root / "data", SERVING_CACHE_DIR=str(root / "serving-cache")
        ),
        transaction.atomic(),
    ):
        call_command("load_demo", verbosity=0)
        first = _counts()
        call_command("load_demo", verbosity=0)
        yield LoadedDemo(counts_after_first_load=first, counts_after_second_load=_counts())
        transaction.set_rollback(True)


@pytest.fixture
def demo_db(loaded, db):
    return loaded


def _experiment(name: str) -> Experiment:
    return Experiment.objects.get(name=name)


def test_demo_creates_one_organisation_experiment_and_private_ones_for_scientist_and_engineer(demo_db):
    experiments = Experiment.objects.filter(name__in=[plan.name for plan in demo.PLANS])
    assert experiments.count() == len(demo.PLANS) == 4
    assert set(experiments.values_list("owner__username", flat=True)) == {"scientist", "engineer"}
    assert set(experiments.values_list("team__name", flat=True)) == {"Risk Analytics"}
    visibilities = sorted(experiments.values_list("visibility", flat=True))
    assert visibilities == ["organisation", "private", "private", "private"]


def test_each_experiment_has_tens_of_runs_ending_finished_with_one_failed_and_one_killed(demo_db):
    for plan in demo.PLANS:
        runs = _experiment(plan.name).runs
        assert runs.count() >= 15
        assert runs.filter(status=Run.Status.FINISHED).count() >= runs.count() - 1
        assert not runs.filter(status=Run.Status.RUNNING).exists()
        assert not runs.filter(end_time__isnull=True).exists()
    assert Run.objects.filter(status=Run.Status.FAILED).count() == 1
    assert Run.objects.filter(status=Run.Status.KILLED).count() == 1


def test_final_metrics_differ_between_runs(demo_db):
    churn = _experiment("Customer churn propensity")
    aucs = LatestMetric.objects.filter(run__experiment=churn, key="roc_auc").values_list("value", flat=True)
    assert len(aucs) == 20
    assert len(set(aucs)) > 10
    assert all(0.5 < auc < 1 for auc in aucs)
    rmses = LatestMetric.objects.filter(key="rmse").values_list("value", flat=True)
    assert len(set(rmses)) > 10


def test_runs_log_curves_over_many_steps(demo_db):
    cases = [
        ("Customer churn propensity", "gbm-", "val_roc_auc"),
        ("Customer churn propensity", "logreg-", "train_log_loss"),
        ("Card fraud detection", "random_forest-", "val_roc_auc"),
        ("Repayment days late", "gbm-", "val_rmse"),
    ]
    for experiment, family, key in cases:
        run = Run.objects.filter(
            experiment__name=experiment, name__startswith=family, status=Run.Status.FINISHED
        ).first()
        curve = list(Metric.objects.filter(run=run, key=key).order_by("step").values_list("step", "value"))
        assert len(curve) > 5, (run.name, key)
        assert len({value for _, value in curve}) > 1
        latest = LatestMetric.objects.get(run=run, key=key)
        assert (latest.step, latest.value) == curve[-1]


def test_killed_run_stops_part_way_through_its_curve(demo_db):
    killed = Run.objects.get(status=Run.Status.KILLED)
    steps = Metric.objects.filter(run=killed, key="val_roc_auc").values_list("step", flat=True)
    assert max(steps) < int(Param.objects.get(run=killed, key="n_estimators").value)
    assert not LatestMetric.objects.filter(run=killed, key="roc_auc").exists()


def test_failed_run_says_why_in_its_note(demo_db):
    failed = Run.objects.get(status=Run.Status.FAILED)
    note = RunTag.objects.get(run=failed, key="mlflow.note.content").value
    assert "lbfgs" in note
    assert not failed.metrics.exists()


def test_every_run_is_linked_to_the_catalog_version_it_trained_on(demo_db):
    for plan in demo.PLANS:
        version = Dataset.objects.get(name=plan.dataset).versions.get()
        inputs = RunInput.objects.filter(run__experiment__name=plan.name)
        assert inputs.count() == _experiment(plan.name).runs.count()
        assert set(inputs.values_list("dataset_version", flat=True)) == {version.pk}
        assert set(inputs.values_list("context", flat=True)) == {"training"}


def test_runs_carry_source_and_commit_tags_and_some_notes(demo_db):
    run = Run.objects.filter(experiment__name="Card fraud detection").first()
    tags = dict(run.tags.values_list("key", "value"))
    assert tags["mlflow.source.name"] == "pipelines/fraud/train_fraud.py"
    assert len(tags["mlflow.source.git.commit"]) == 40
    assert tags["mlflow.user"] == "engineer"
    assert RunTag.objects.filter(key="mlflow.note.content").count() >= len(demo.PLANS)
    assert Param.objects.filter(run=run, key="random_state", value=str(demo.SEED)).exists()


def test_finished_runs_have_feature_importance_and_a_confusion_matrix_or_residuals(demo_db):
    for run in Run.objects.filter(status=Run.Status.FINISHED):
        root = artifacts.root_key(run.artifact_uri)
        assert artifacts.exists(root, "feature_importance.csv")
        assert artifacts.exists(root, "confusion_matrix.json") or artifacts.exists(root, "residuals.json")


def test_two_best_runs_of_each_experiment_log_the_model_to_the_run_and_as_a_ready_logged_model(demo_db):
    for plan in demo.PLANS:
        models = LoggedModel.objects.filter(experiment__name=plan.name)
        assert models.count() == 2
        for model in models:
            assert model.status == LoggedModel.Status.READY
            assert model.source_run_uuid == model.run.run_uuid
            run_root = artifacts.root_key(model.run.artifact_uri)
            for name in ("MLmodel", "requirements.txt"):
                assert artifacts.exists(artifacts.root_key(model.artifact_location), name)
                assert artifacts.exists(run_root, f"model/{name}")
            assert artifacts.exists(run_root, "plots/validation.png")


def test_logged_model_loads_back_with_mlflow_and_predicts_on_the_catalog_file(demo_db):
    model = LoggedModel.objects.filter(experiment__name="Card fraud detection").first()
    path = artifacts.storage().path(artifacts.root_key(model.artifact_location))
    estimator = mlflow.sklearn.load_model(path)
    version = Dataset.objects.get(name="Card transactions").versions.get()
    raw = pd.read_csv(version.source_uri, keep_default_na=False, na_values=[""])
    probability = estimator.predict_proba(demo._features(raw))[:, 1]
    assert probability.shape == (len(raw),)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert len(np.unique(probability)) > 10


def test_loading_the_demo_again_adds_nothing(demo_db):
    assert demo_db.counts_after_second_load == demo_db.counts_after_first_load
    assert demo_db.counts_after_first_load["Run"] == sum(len(plan.configs) for plan in demo.PLANS)


def test_training_is_deterministic():
    plan = demo.PLANS[0]
    rng = np.random.default_rng(0)
    raw = pd.DataFrame(
        {
            "id": range(1, 201),
            "region": rng.choice(demo.REGIONS, 200),
            "amount": rng.lognormal(4, 0.8, 200).round(2),
            "score": rng.normal(600, 80, 200).round(),
            "event_date": pd.date_range("2024-01-01", periods=200, freq="D").strftime("%Y-%m-%d"),
            "flag": rng.random(200) < 0.1,
            "churn_note": rng.choice(["", "auto", "manual review"], 200),
        }
    )
    features = demo._features(raw)
    target = demo._TARGETS[plan.target](features, np.random.default_rng(demo.SEED))
    config = next(c for c in plan.configs if c.family == "gbm")
    first, second = (demo._train(plan, config, features, target) for _ in range(2))
    assert first.metrics == second.metrics
    assert first.curves == second.curves


def _version(model: str, alias: str | None = None, number: int = 1) -> ModelVersion:
    if alias:
        return ModelAlias.objects.get(registered_model__name=model, alias=alias).model_version
    return ModelVersion.objects.get(registered_model__name=model, version=number)


def test_demo_registers_three_models_owned_like_their_experiments_one_organisation_wide(demo_db):
    models = {m.name: m for m in RegisteredModel.objects.select_related("owner", "team")}
    assert set(models) == {"churn-propensity", "card-fraud", "probability-of-default"}
    assert {name: m.owner.username for name, m in models.items()} == {
        "churn-propensity": "scientist",
        "card-fraud": "engineer",
        "probability-of-default": "scientist",
    }
    assert {m.team.name for m in models.values()} == {"Risk Analytics"}
    organisation = [name for name, m in models.items() if m.visibility == RegisteredModel.Visibility.ORGANISATION]
    assert organisation == ["churn-propensity"]


def test_versions_are_the_experiments_logged_models_with_their_files(demo_db):
    expected = {"churn-propensity": 2, "card-fraud": 2, "probability-of-default": 1}
    for name, count in expected.items():
        versions = ModelVersion.objects.filter(registered_model__name=name).select_related("logged_model", "run")
        assert versions.count() == count
        for version in versions:
            assert version.source == f"models:/{version.logged_model.model_id}"
            assert version.run == version.logged_model.run
            assert version.flavor == "sklearn" and version.signature_inputs
            assert artifacts.exists(artifacts.root_key(version.storage_location), "MLmodel")
    assert LoggedModel.objects.filter(model_versions__isnull=False).distinct().count() == sum(expected.values())


def test_churn_champion_is_the_best_run_and_challenger_the_next(demo_db):
    champion = _version("churn-propensity", alias="champion")
    challenger = _version("churn-propensity", alias="challenger")
    assert (champion.version, challenger.version) == (1, 2)
    auc = {
        version: LatestMetric.objects.get(run=version.run, key="roc_auc").value for version in (champion, challenger)
    }
    assert auc[champion] >= auc[challenger]
    best = LatestMetric.objects.filter(run__experiment__name="Customer churn propensity", key="roc_auc")
    assert auc[champion] == max(best.values_list("value", flat=True))


def test_cards_range_from_nearly_complete_to_draft(demo_db):
    names = ("churn-propensity", "card-fraud", "probability-of-default")
    score = {name: cards.completeness(_version(name).card)[0] for name in names}
    assert score["churn-propensity"] >= 80
    assert score["card-fraud"] < 50
    assert score["card-fraud"] < score["probability-of-default"] < score["churn-propensity"]


def test_a_later_version_keeps_the_written_sections_of_the_card(demo_db):
    first, second = _version("churn-propensity").card, _version("churn-propensity", number=2).card
    for section in ("intended_use", "factors", *cards.CONSIDERATION_SECTIONS):
        assert getattr(second, section) == getattr(first, section)
    assert second.model_details["version"] == "2"


def test_cards_training_data_links_the_catalog_version_the_run_trained_on(demo_db):
    datasets = {
        "churn-propensity": "Customer churn labels",
        "card-fraud": "Card transactions",
        "probability-of-default": "Default training set",
    }
    for name, dataset in datasets.items():
        catalog_version = Dataset.objects.get(name=dataset).versions.get()
        for card in ModelCard.objects.filter(model_version__registered_model__name=name):
            assert card.training_data == [catalog_version.pk]


def test_churn_slice_table_is_measured_per_region_on_the_runs_hold_out(demo_db):
    for version in ModelVersion.objects.filter(registered_model__name="churn-propensity"):
        rows = version.card.quantitative_analysis
        assert {row["group"] for row in rows if row["slice"] == "region"} == {"north", "south", "east", "west"}
        region_rows = sum(row["value"] for row in rows if row["slice"] == "region" and row["metric"] == "rows")
        overall = {row["metric"]: row["value"] for row in rows if row["slice"] == "overall"}
        assert region_rows == overall["rows"]
        # Scoring the registered model file on the same split reproduces the run's metric.
        run_auc = LatestMetric.objects.get(run=version.run, key="roc_auc").value
        assert overall["roc_auc"] == pytest.approx(run_auc, abs=1e-4)
        [auc] = [row for row in version.card.metrics if row["name"] == "roc_auc"]
        assert auc["ci_low"] < auc["value"] < auc["ci_high"] and auc["threshold"] is not None


def test_loading_the_demo_again_registers_nothing_new(demo_db):
    assert demo_db.counts_after_second_load == demo_db.counts_after_first_load
    assert demo_db.counts_after_first_load["ModelVersion"] == 5


def test_demo_logins_and_teams_exist_once(demo_db):
    usernames = set(User.objects.values_list("username", flat=True))
    assert usernames >= {"scientist", "engineer", "approver", "approver2", "ops", "owner", "admin"}
    assert Team.objects.count() == 3


def test_staging_and_production_have_their_policies(demo_db):
    staging, production = Environment.objects.get(name="staging"), Environment.objects.get(name="production")
    assert staging.min_card_completeness == 40 and not staging.requires_step_up
    assert [(r.role, r.required_approvals) for r in staging.approval_rules.all()] == [("Approvers", 1)]
    assert production.min_card_completeness == 80 and production.requires_step_up
    assert production.metric_thresholds == [{"metric": "roc_auc", "op": ">=", "value": 0.65}]
    assert {(r.role, r.team.name if r.team else None) for r in production.approval_rules.all()} == {
        ("Approvers", None),
        ("", "Model Risk"),
    }


def test_the_churn_champion_is_live_with_two_approvals_and_who_pushed_it(demo_db):
    endpoint = Endpoint.objects.get(name="churn-propensity")
    champion = ModelAlias.objects.get(registered_model__name="churn-propensity", alias="champion").model_version
    assert endpoint.state == "live" and endpoint.current_version == champion
    request = endpoint.live_request
    assert request.state == "live" and request.deployed_by.username == "ops"
    assert {(a.approver.username, a.step_up) for a in request.approvals.all()} == {
        ("approver", True),
        ("approver2", True),
    }
    assert endpoint.revisions.get().request == request


def test_requests_in_several_states(demo_db):
    states = set(DeploymentRequest.objects.values_list("state", flat=True))
    assert {"live", "pending", "rejected", "draft"} <= states
    rejected = DeploymentRequest.objects.get(state="rejected")
    assert rejected.approvals.get().comment


def test_the_approvers_have_requests_in_their_inbox(demo_db):
    assert deployment_selectors.inbox(User.objects.get(username="approver2")).count() == 2
    assert deployment_selectors.inbox(User.objects.get(username="approver")).count() == 1


# --- Business value (apps/value/demo.py) ------------------------------------------------------


def _use_case(name: str):
    from apps.value.models import UseCase

    return UseCase.objects.select_related("owner").get(name=name)


def test_demo_use_cases_cover_every_stage_once_each_after_two_loads(demo_db):
    from apps.value.models import STAGE_ORDER, UseCase

    assert UseCase.objects.count() == 6
    assert set(UseCase.objects.values_list("stage", flat=True)) == set(STAGE_ORDER)
    assert set(UseCase.objects.values_list("owner__username", flat=True)) == {"owner"}


def test_demo_use_cases_have_a_year_of_monthly_costs(demo_db):
    from apps.value.models import CostEntry

    churn = _use_case("Customer churn reduction")
    months = {entry.period_start.replace(day=1) for entry in CostEntry.objects.filter(use_case=churn)}
    assert len(months) >= 12
    assert CostEntry.objects.filter(use_case=churn, source="imported", category="compute").count() == 12


def test_the_churn_use_case_has_paid_back_and_fraud_triage_has_not(demo_db):
    from apps.value import selectors

    churn = selectors.summary_of(_use_case("Customer churn reduction"))
    assert churn.payback_date is not None and churn.roi > 0
    fraud = selectors.summary_of(_use_case("Card fraud triage"))
    assert fraud.payback_date is None and fraud.value > 0 and fraud.roi < 0


def test_the_retired_use_case_lost_money_at_the_end(demo_db):
    from apps.value.models import ValueEntry

    branches = _use_case("Branch staffing forecast")
    assert branches.stage == "retired"
    assert ValueEntry.objects.filter(use_case=branches, amount__lt=0).exists()


def test_the_churn_use_case_is_linked_to_the_live_endpoint_and_its_data(demo_db):
    churn = _use_case("Customer churn reduction")
    assert list(churn.endpoints.values_list("name", flat=True)) == ["churn-propensity"]
    assert list(churn.registered_models.values_list("name", flat=True)) == ["churn-propensity"]
    assert churn.datasets.filter(name="Customer churn labels").exists()
    assert churn.stage_changes.count() == 5


def test_the_business_owner_sees_the_demo_portfolio(demo_db):
    from apps.value import selectors

    figures = selectors.portfolio(User.objects.get(username="owner"))
    assert len(figures.rows) == 6
    assert figures.totals["EUR"].value > 0
    assert figures.median_days_to_production is not None


def test_compute_rates_are_set_for_each_environment_and_a_default(demo_db):
    from apps.value.models import ComputeRate

    assert ComputeRate.objects.filter(environment__isnull=True).count() == 1
    assert set(ComputeRate.objects.exclude(environment=None).values_list("environment__name", flat=True)) == {
        "staging",
        "production",
    }


def test_the_live_churn_endpoint_has_weeks_of_telemetry(demo_db):
    import datetime as dt

    from django.utils import timezone

    from apps.monitoring import selectors as monitoring
    from apps.monitoring.models import TrafficMinute

    endpoint = Endpoint.objects.get(name="churn-propensity")
    oldest = TrafficMinute.objects.filter(endpoint=endpoint).order_by("minute").first().minute
    assert timezone.now() - oldest > dt.timedelta(days=21)
    now = timezone.now()
    assert monitoring.endpoint_window_stats(endpoint, start=now - dt.timedelta(days=7), end=now).requests > 1000


def test_the_live_churn_endpoint_drifts_against_its_training_profile(demo_db):
    from apps.monitoring import selectors as monitoring

    report = monitoring.latest_drift_report(Endpoint.objects.get(name="churn-propensity"))
    assert report.verdict == "alert"
    assert report.reference_version.dataset.name == "Customer churn labels"
    assert next(f for f in report.features if f["name"] == "score")["verdict"] == "alert"


def test_the_demo_environments_have_default_alert_rules(demo_db):
    from apps.alerting import demo as alerting_demo
    from apps.alerting.models import AlertRule

    assert AlertRule.objects.filter(environment__name="production").count() == len(alerting_demo.PRODUCTION_DEFAULTS)
    assert AlertRule.objects.filter(environment__name="staging").count() == len(alerting_demo.STAGING_DEFAULTS)
    assert AlertRule.objects.filter(endpoint__name="churn-propensity", kind="live_metric_below").count() == 1


def test_the_drifting_demo_endpoint_has_one_open_firing_drift_alert(demo_db):
    from apps.alerting.models import Alert

    open_alerts = Alert.objects.filter(state__in=Alert.OPEN_STATES)
    assert open_alerts.count() == 1  # loading twice opened no duplicate
    alert = open_alerts.get()
    assert alert.state == "firing" and alert.rule.kind == "drift_score"
    assert alert.value >= alert.threshold
    assert alert.endpoint.drift_reports.exists()
