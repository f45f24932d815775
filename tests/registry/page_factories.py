"""Small builders for the registry pages' and exports' tests. Models, versions, aliases and
cards are made through apps.registry.services (as users make them); runs and their files
through the tracking test factories and the artifact store."""

from __future__ import annotations

import itertools

import pytest

from apps.registry import services
from apps.registry.models import ModelVersion, RegisteredModel
from apps.tracking import artifacts
from tests.tracking.factories import make_experiment, make_run

_names = itertools.count(1)

MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
  sklearn:
    pickled_model: model.pkl
signature:
  inputs: '[{"type": "double", "name": "tenure_months", "required": true},
    {"type": "string", "name": "plan", "required": false}]'
  outputs: '[{"type": "long", "required": true}]'
"""


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


def make_model(owner, name: str | None = None, *, visibility="private", description="", team=None, tags=()):
    return services.create_registered_model(
        by=owner,
        name=name or f"model-{next(_names)}",
        description=description,
        visibility=visibility,
        team=team,
        tags=list(tags),
    )


def model_run(owner, *, experiment=None, metrics=None, params=None, **kwargs):
    """A finished run whose artifacts hold an MLflow model folder `model/`."""
    experiment = experiment or make_experiment(owner)
    run = make_run(
        experiment,
        owner,
        metrics=metrics if metrics is not None else {"auc": [0.70, 0.80, 0.86], "rmse": 0.4},
        params=params if params is not None else {"max_depth": "6"},
        tags={"mlflow.source.name": "train.py", "mlflow.source.git.commit": "abc123def"},
        **kwargs,
    )
    root = artifacts.root_key(run.artifact_uri)
    artifacts.save_stream(artifacts.join(root, "model/MLmodel"), [MLMODEL.encode()])
    artifacts.save_stream(artifacts.join(root, "model/model.pkl"), [b"bytes"])
    return run


def make_version(model: RegisteredModel, by=None, *, run=None, description="") -> ModelVersion:
    by = by or model.owner
    run = run or model_run(by)
    return services.create_model_version(
        by=by, model=model, source=f"runs:/{run.run_uuid}/model", description=description
    )


def set_card(version: ModelVersion, by=None, **changes):
    return services.update_card(by=by or version.registered_model.owner, card=version.card, changes=changes)


FULL_CARD = {
    "model_details": {
        "overview": "Scores **churn** risk. <script>alert('xss')</script>",
        "owners": "Retention team\nAda Lovelace",
        "version": "1",
        "date": "2026-01-01",
        "license": "apache-2.0",
        "references": "https://example.test/paper",
        "citation": "@misc{churn, title={Churn}}",
    },
    "intended_use": {
        "primary_uses": "Prioritise retention calls.",
        "primary_users": "Customer success managers.",
        "out_of_scope_uses": "Credit decisions.",
    },
    "factors": "Plan, region.",
    "training_data_notes": "Twelve months of accounts.",
    "evaluation_data": "Holdout of the last month.",
    "metrics": [{"name": "auc", "value": 0.86, "threshold": 0.8, "ci_low": 0.84, "ci_high": 0.88, "slice": ""}],
    "quantitative_analysis": [{"slice": "region", "group": "EU", "metric": "auc", "value": 0.85}],
    "fairness_considerations": "Checked across regions.",
    "ethical_considerations": "Calls can feel intrusive.",
    "risks_and_mitigations": "Cap calls per customer.",
    "caveats_and_recommendations": "Retrain quarterly.",
}
