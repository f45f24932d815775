"""Every MLflow endpoint, fed arbitrary JSON built from the fields MLflow's protos name: never a
5xx, always MLflow's error shape when refused. (The DRF API is fuzzed from its OpenAPI schema
by schemathesis; this API has no OpenAPI schema, so hypothesis builds the bodies.)"""

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts import services as accounts
from apps.tracking import services
from apps.tracking.mlflow_api import PATTERN_ROUTES, ROUTES

FIELDS = [
    "experiment_id",
    "experiment_ids",
    "experiment_name",
    "name",
    "new_name",
    "run_id",
    "run_uuid",
    "run_ids",
    "key",
    "value",
    "timestamp",
    "step",
    "metrics",
    "params",
    "tags",
    "filter",
    "order_by",
    "max_results",
    "page_token",
    "run_view_type",
    "view_type",
    "status",
    "end_time",
    "start_time",
    "run_name",
    "metric_key",
    "datasets",
    "models",
    "model_json",
    "path",
    "artifact_location",
    "source_run_id",
    "model_type",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["NaN", "Infinity", "1", "0", "FINISHED", "../x", "metrics.a > 1", "eyJvZmZzZXQiOiAtMX0="]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4),
    max_leaves=8,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
ENDPOINTS = sorted(ROUTES) + [
    ("/".join(p).replace("{model_id}", "m-x").replace("{tag_key}", "k"), m) for p, m, _ in PATTERN_ROUTES
]


@pytest.fixture
def caller(users, db):
    experiment = services.create_experiment(by=users["scientist"], name="fuzz")
    run = services.create_run(by=users["scientist"], experiment=experiment)
    _, secret = accounts.create_token(user=users["scientist"], name="fuzz")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}"), experiment, run


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint, method", ENDPOINTS, ids=[f"{m} {e}" for e, m in ENDPOINTS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, use_real_ids=st.booleans())
def test_no_input_makes_a_5xx(caller, endpoint, method, body, use_real_ids):
    client, experiment, run = caller
    if use_real_ids:
        body = {**body, "experiment_id": str(experiment.pk), "run_id": run.run_uuid}
    url = f"/api/2.0/mlflow/{endpoint}"
    if method == "GET":
        query = {key: json.dumps(value) if isinstance(value, list | dict) else value for key, value in body.items()}
        query = {key: value for key, value in query.items() if value is not None}
        response = client.get(url, query)
    else:
        response = client.generic(method, url, json.dumps(body), content_type="application/json")
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert set(response.json()) == {"error_code", "message"}
