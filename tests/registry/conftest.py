"""Fixtures for the registry tests: the live-server MLflow client (as in
tests/tracking/test_mlflow_client.py), raw HTTP against the MLflow API, and small builders."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.accounts import services as accounts
from apps.tracking import artifacts
from tests.tracking.factories import make_experiment, make_run

API = "/api/2.0/mlflow"


class MlflowHttp:
    """Raw HTTP against the MLflow API as one user (their personal token)."""

    def __init__(self, user):
        self.client = Client()
        _, secret = accounts.create_token(user=user, name="test")
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    def call(self, method: str, endpoint: str, body: dict | None = None):
        if method == "GET":
            return self.client.get(f"{API}/{endpoint}", body or {}, **self.headers)
        send = getattr(self.client, method.lower())
        return send(f"{API}/{endpoint}", data=json.dumps(body or {}), content_type="application/json", **self.headers)


@pytest.fixture
def http():
    return MlflowHttp


def logged_run(owner, *, experiment=None, files: dict[str, str] | None = None, **run_kwargs):
    """A finished run whose artifacts hold `files` ({relative path: text}); by default an
    MLflow model folder `model/` with an MLmodel file."""
    experiment = experiment or make_experiment(owner)
    run = make_run(experiment, owner, **run_kwargs)
    root = artifacts.root_key(run.artifact_uri)
    files = files if files is not None else {"model/MLmodel": MLMODEL, "model/model.pkl": "bytes"}
    for path, text in files.items():
        artifacts.save_stream(artifacts.join(root, path), [text.encode()])
    return run


MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.0
  sklearn:
    pickled_model: model.pkl
    sklearn_version: 1.5.0
mlflow_version: 3.17.2
signature:
  inputs: '[{"type": "double", "name": "age", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
"""
