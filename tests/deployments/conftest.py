"""Builders for the deployment tests: environments with rules, model versions with a real
(tiny) scikit-learn model in artifact storage, and requests moved to a given state."""

from __future__ import annotations

import io
import itertools
import pickle

import pytest
import yaml
from django.contrib.auth.models import Group
from django.utils import timezone

from apps.accounts import services as accounts
from apps.accounts.roles import APPROVER, ENGINEER
from apps.deployments import services
from apps.deployments.models import ApprovalRule, DeploymentRequest, Environment
from apps.registry.models import ModelCard, ModelVersion, RegisteredModel
from apps.tracking import artifacts
from apps.tracking.models import LatestMetric
from tests.conftest import make_user
from tests.tracking.factories import make_experiment, make_run

_names = itertools.count(1)


@pytest.fixture(autouse=True)
def jobs_stay_queued_without_a_worker(request, monkeypatch):
    """Jobs are recorded but not sent to the broker unless the test runs a worker: the session's
    worker, once started by any test, would otherwise move requests on behind a test's back."""
    if "celery_worker" not in request.fixturenames:
        monkeypatch.setattr("apps.jobs.services.send_job", lambda *, job_id: False)


@pytest.fixture
def artifact_root(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    settings.SERVING_CACHE_DIR = str(tmp_path / "serving-cache")
    return tmp_path / "artifacts"


@pytest.fixture
def people(users):
    """The role users plus a second approver and a team of risk validators."""
    extra = {
        "approver2": make_user("approver2", APPROVER),
        "engineer2": make_user("engineer2", ENGINEER),
        "validator": make_user("validator"),
    }
    everyone = {**users, **extra}
    risk = accounts.create_team(name="Model Risk", by=users["admin"], lead=extra["validator"])
    accounts.add_team_member(team=risk, user=extra["approver2"], by=users["admin"])
    deployers = accounts.create_team(name="Platform Ops", by=users["admin"], lead=users["ops"])
    everyone["risk_team"] = risk
    everyone["ops_team"] = deployers
    return everyone


def make_environment(name: str = "staging", *, rules=(("role", APPROVER, 1),), **policy) -> Environment:
    policy.setdefault("forbid_unapproved_pii", False)
    environment = Environment.objects.create(name=name, **policy)
    for kind, who, count in rules:
        ApprovalRule.objects.create(
            environment=environment,
            team=who if kind == "team" else None,
            role=who if kind == "role" else "",
            required_approvals=count,
        )
    return environment


def sklearn_model_files() -> dict[str, bytes]:
    """A fitted LogisticRegression as an MLflow sklearn model folder (pickle format)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.pkl", "python_version": "3.11"},
            "sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle", "sklearn_version": "1.5"},
        },
        "signature": {"inputs": '[{"type": "double", "name": "x", "required": true}]', "outputs": None},
    }
    buffer = io.BytesIO()
    pickle.dump(model, buffer)
    return {"MLmodel": yaml.safe_dump(mlmodel).encode(), "model.pkl": buffer.getvalue()}


def make_version(
    owner,
    *,
    model: RegisteredModel | None = None,
    metrics: dict | None = None,
    files: dict[str, bytes] | None = None,
    visibility: str = "organisation",
    team=None,
    card: dict | None = None,
) -> ModelVersion:
    """A version of `model` (a new organisation-wide one by default) whose files are a real model."""
    experiment = make_experiment(owner, visibility=visibility, team=team)
    run = make_run(experiment, owner)
    _log_latest_metrics(run, metrics or {"roc_auc": 0.8})
    location = f"{run.artifact_uri}/model"
    root = artifacts.root_key(location)
    for path, content in (files if files is not None else sklearn_model_files()).items():
        artifacts.save_stream(artifacts.join(root, path), [content])
    if model is None:
        stamp = int(timezone.now().timestamp() * 1000)
        model = RegisteredModel.objects.create(
            name=f"model-{next(_names)}",
            owner=owner,
            team=team,
            visibility=visibility,
            creation_timestamp=stamp,
            last_updated_timestamp=stamp,
        )
    number = (model.versions.count() or 0) + 1
    version = ModelVersion.objects.create(
        signature_inputs=_signature_inputs(files),
        registered_model=model,
        version=number,
        source=location,
        run=run,
        storage_location=location,
        flavor="sklearn",
        flavors=["python_function", "sklearn"],
        user=owner,
        creation_timestamp=0,
        last_updated_timestamp=0,
    )
    ModelCard.objects.create(model_version=version, creation_timestamp=0, last_updated_timestamp=0, **(card or {}))
    return version


def _signature_inputs(files: dict[str, bytes] | None):
    """The signature inputs of a model folder's MLmodel file (what registering it would read)."""
    import json

    document = yaml.safe_load((files or {}).get("MLmodel", b"") or "{}") or {}
    inputs = (document.get("signature") or {}).get("inputs")
    return json.loads(inputs) if isinstance(inputs, str) else None


def _log_latest_metrics(run, metrics: dict) -> None:
    # Only the latest values matter to the checks. The experiment is copied onto the row when
    # the tracking app keeps it there (its search index), so this works either way.
    extra = {"experiment_id": run.experiment_id} if hasattr(LatestMetric, "experiment_id") else {}
    for key, value in metrics.items():
        LatestMetric.objects.create(run=run, key=key, value=value, timestamp=0, step=0, **extra)


def make_request(
    requester, version, environment, *, endpoint: str = "churn", state: str | None = None, **kwargs
) -> DeploymentRequest:
    request = services.create_request(
        by=requester,
        model_version=version,
        environment=environment,
        endpoint_name=endpoint,
        justification=kwargs.pop("justification", "Better recall on the hold-out."),
        risk_note=kwargs.pop("risk_note", "Low: the scores only prioritise outreach."),
        **kwargs,
    )
    if state is not None:
        DeploymentRequest.objects.filter(pk=request.pk).update(state=state)
        request.refresh_from_db()
    return request


def pass_checks(request) -> None:
    """Store passing results for every check the environment requires (as the job would)."""
    from apps.deployments import policy

    outcomes = [policy.CheckOutcome(name, "pass", {}) for name in policy.required_check_names(request.environment)]
    services.record_checks(request=request, outcomes=outcomes)


def add_to_group(user, name: str) -> None:
    user.groups.add(Group.objects.get(name=name))
    user.__dict__.pop("_causeway_roles", None)


def skops_model_files() -> dict[str, bytes]:
    """A fitted scikit-learn pipeline saved by mlflow with skops (servable without pickles), as
    the files of an MLflow model folder. Columns a, b, n (numbers) and region (text)."""
    import tempfile
    from pathlib import Path

    from tests.deployments.test_serving_loader import pipeline_model, save_sklearn

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        save_sklearn(folder, pipeline_model())
        return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
