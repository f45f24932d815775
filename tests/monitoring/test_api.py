"""The monitoring API: outcome feedback by request id (bulk, validation as 400), an
endpoint's summary and drift reports; permissions (anonymous 401, no grant 404)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from apps.monitoring.models import Outcome, PredictionRecord
from apps.monitoring.services import record_minute
from tests.conftest import make_user
from tests.monitoring.factories import make_drift_report, make_endpoint

NOW = timezone.now().replace(second=0, microsecond=0)


@pytest.fixture
def endpoint(users):
    endpoint = make_endpoint(users["engineer"], name="churn")
    for i, predictions in enumerate([[1, 0, 1], [0]]):
        PredictionRecord.objects.create(
            endpoint=endpoint,
            request_id=f"req-{i}",
            rows=len(predictions),
            predictions=predictions,
            created_at=NOW - dt.timedelta(minutes=5),
        )
    return endpoint


def client_for(user) -> APIClient:
    _, secret = accounts.create_token(user=user, name="api")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def outcomes_url(name="churn"):
    return reverse("api:monitoring-outcomes", args=[name])


def test_the_owner_posts_outcomes_for_several_predictions(users, endpoint):
    payload = {
        "outcomes": [
            {"request_id": "req-0", "row": 0, "actual": 1},
            {"request_id": "req-0", "row": 2, "actual": 0},
            {"request_id": "req-1", "actual": 0},
        ]
    }
    response = client_for(users["engineer"]).post(outcomes_url(), payload, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 3, "updated": 0}
    assert dict(Outcome.objects.values_list("row", "predicted").filter(request_id="req-0")) == {0: 1, 2: 1}


def test_posting_the_same_row_again_replaces_its_value(users, endpoint):
    client = client_for(users["engineer"])
    client.post(outcomes_url(), {"outcomes": [{"request_id": "req-1", "actual": 1}]}, format="json")
    response = client.post(outcomes_url(), {"outcomes": [{"request_id": "req-1", "actual": 0}]}, format="json")
    assert response.json() == {"created": 0, "updated": 1}
    assert Outcome.objects.get().actual == 0


def test_live_accuracy_follows_posted_outcomes(users, endpoint):
    from apps.monitoring.selectors import live_metrics

    client_for(users["engineer"]).post(
        outcomes_url(),
        {"outcomes": [{"request_id": "req-0", "row": r, "actual": 1} for r in range(3)]},
        format="json",
    )
    metrics = live_metrics(endpoint, start=NOW - dt.timedelta(hours=1), end=NOW)
    assert metrics["accuracy"] == pytest.approx(2 / 3)


def test_posting_outcomes_is_audited(users, endpoint):
    client_for(users["engineer"]).post(
        outcomes_url(), {"outcomes": [{"request_id": "req-1", "actual": 1}]}, format="json"
    )
    assert AuditEvent.objects.filter(action="monitoring.outcomes_recorded", object_id=str(endpoint.pk)).exists()


def test_an_unknown_request_id_is_a_400_and_nothing_is_stored(users, endpoint):
    payload = {"outcomes": [{"request_id": "req-0", "actual": 1}, {"request_id": "nope", "actual": 1}]}
    response = client_for(users["engineer"]).post(outcomes_url(), payload, format="json")
    assert response.status_code == 400
    assert "nope" in response.json()["error"]["details"]["1"][0]
    assert not Outcome.objects.exists()


def test_a_row_beyond_the_prediction_is_a_400(users, endpoint):
    payload = {"outcomes": [{"request_id": "req-1", "row": 5, "actual": 1}]}
    response = client_for(users["engineer"]).post(outcomes_url(), payload, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"outcomes": []},
        {"outcomes": "x"},
        {"outcomes": [{"request_id": "req-1"}]},
        {"outcomes": [{"request_id": "req-1", "actual": None}]},
        {"outcomes": [{"request_id": "req-1", "actual": {"a": 1}}]},
        {"outcomes": [{"request_id": "bad id!", "actual": 1}]},
        {"outcomes": [{"request_id": "req-1", "row": -1, "actual": 1}]},
    ],
)
def test_malformed_outcomes_are_400s(users, endpoint, payload):
    response = client_for(users["engineer"]).post(outcomes_url(), payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_anonymous_callers_get_401(endpoint):
    assert APIClient().post(outcomes_url(), {"outcomes": []}, format="json").status_code == 401


def test_a_user_without_a_grant_gets_404(users, endpoint):
    client = client_for(users["nobody"])
    assert client.post(outcomes_url(), {"outcomes": []}, format="json").status_code == 404
    assert client.get(reverse("api:monitoring-endpoint", args=["churn"])).status_code == 404
    assert client.get(reverse("api:monitoring-drift-reports", args=["churn"])).status_code == 404


def test_an_approver_who_sees_the_endpoint_but_may_not_invoke_it_gets_403(users, endpoint):
    from apps.accounts.roles import APPROVER
    from apps.deployments.models import ApprovalRule

    ApprovalRule.objects.create(environment=endpoint.environment, role=APPROVER, required_approvals=1)
    client = client_for(users["approver"])
    assert client.get(reverse("api:monitoring-endpoint", args=["churn"])).status_code == 200
    response = client.post(outcomes_url(), {"outcomes": [{"request_id": "req-1", "actual": 1}]}, format="json")
    assert response.status_code == 403


def test_a_caller_granted_invoke_may_post_outcomes(endpoint):
    invoker = make_user("invoker")
    assign_perm("deployments.invoke_endpoint", invoker, endpoint)
    response = client_for(invoker).post(
        outcomes_url(), {"outcomes": [{"request_id": "req-1", "actual": 0}]}, format="json"
    )
    assert response.status_code == 201


def test_summary_reports_the_window_and_latest_drift(users, endpoint):
    record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(minutes=2), requests=10, errors=1)
    make_drift_report(endpoint, score=0.3, verdict="alert")
    response = client_for(users["engineer"]).get(reverse("api:monitoring-endpoint", args=["churn"]), {"range": "1h"})
    assert response.status_code == 200
    body = response.json()
    assert body["stats"]["requests"] == 10
    assert body["stats"]["error_rate"] == pytest.approx(0.1)
    assert body["latest_drift"]["verdict"] == "alert"


def test_summary_refuses_an_unknown_range(users, endpoint):
    response = client_for(users["engineer"]).get(reverse("api:monitoring-endpoint", args=["churn"]), {"range": "9y"})
    assert response.status_code == 400


def test_drift_reports_are_listed_newest_first_and_read_one_by_one(users, endpoint):
    make_drift_report(endpoint, score=0.01, at=NOW - dt.timedelta(hours=2))
    newest = make_drift_report(endpoint, score=0.2, verdict="warn", at=NOW)
    client = client_for(users["engineer"])
    listed = client.get(reverse("api:monitoring-drift-reports", args=["churn"])).json()
    assert [r["id"] for r in listed["results"]][0] == newest.pk
    detail = client.get(reverse("api:monitoring-drift-report", args=["churn", newest.pk]))
    assert detail.json()["verdict"] == "warn"
    assert "features" in detail.json()


def test_the_outcome_api_is_in_the_openapi_schema(users):
    client = APIClient()
    client.force_authenticate(users["admin"])
    schema = client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/monitoring/endpoints/{name}/outcomes" in schema["paths"]
