"""/api/v1/alerts: list (filtered to the endpoints the caller may see), read, acknowledge and
resolve, with the API's one error shape; and the operations are in the OpenAPI schema."""

from __future__ import annotations

import pytest

from apps.accounts import services as accounts
from apps.alerting import services
from apps.alerting.models import Alert
from tests.alerting.conftest import fail_job, job_rule

pytestmark = pytest.mark.django_db

LIST = "/api/v1/alerts/"


@pytest.fixture
def alert(endpoint, people) -> Alert:
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    services.evaluate(rule=rule, endpoint=endpoint)
    return Alert.objects.get(rule=rule)


def test_anonymous_callers_are_refused(api_client, alert):
    response = api_client.get(LIST)
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_the_owner_lists_their_endpoints_alerts(api_client, alert, people):
    api_client.force_authenticate(people["owner_user"])
    body = api_client.get(LIST, {"state": "open"}).json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["id"] == alert.pk and row["endpoint"] == "churn-propensity" and row["state"] == "firing"
    assert row["kind"] == "job_failures" and row["severity"] == "critical" and row["silenced"] is False


def test_a_user_without_a_part_sees_nothing_and_gets_404(api_client, alert, people):
    api_client.force_authenticate(people["stranger"])
    assert api_client.get(LIST).json()["count"] == 0
    assert api_client.get(f"{LIST}{alert.pk}/").status_code == 404
    response = api_client.post(f"{LIST}{alert.pk}/acknowledge/", {}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    # A bad body does not tell a stranger anything either: the hidden alert answers 404 first.
    response = api_client.post(f"{LIST}{alert.pk}/resolve/", {"comment": "x" * 6000}, format="json")
    assert response.status_code == 404


def test_a_bad_filter_is_a_400(api_client, alert, people):
    api_client.force_authenticate(people["ops"])
    response = api_client.get(LIST, {"severity": "apocalyptic"})
    assert response.status_code == 400 and "severity" in response.json()["error"]["details"]


def test_the_on_call_member_acknowledges_and_resolves_over_the_api(api_client, alert, people):
    api_client.force_authenticate(people["oncall"])
    response = api_client.post(f"{LIST}{alert.pk}/acknowledge/", {"comment": "paged"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "acknowledged"
    assert response.json()["acknowledged_by"] == "oncall-member"
    response = api_client.post(f"{LIST}{alert.pk}/resolve/", {"comment": "fixed"}, format="json")
    assert response.status_code == 200 and response.json()["resolve_comment"] == "fixed"


def test_an_impossible_move_is_a_400_with_the_reason(api_client, alert, people):
    api_client.force_authenticate(people["ops"])
    api_client.post(f"{LIST}{alert.pk}/resolve/", {}, format="json")
    response = api_client.post(f"{LIST}{alert.pk}/acknowledge/", {}, format="json")
    assert response.status_code == 400
    assert "Only firing alerts can be acknowledged" in str(response.json()["error"])


def test_a_viewer_who_may_not_act_gets_403(api_client, alert, people):
    team = accounts.create_team(name="Readers", by=people["admin"])
    accounts.add_team_member(team=team, user=people["stranger"], by=people["admin"])
    alert.endpoint.team = team
    alert.endpoint.save()
    api_client.force_authenticate(people["stranger"])
    assert api_client.get(f"{LIST}{alert.pk}/").status_code == 200
    response = api_client.post(f"{LIST}{alert.pk}/resolve/", {}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert Alert.objects.get().state == "firing"


def test_the_alert_operations_are_in_the_schema(api_client, people):
    api_client.force_authenticate(people["ops"])
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert "/api/v1/alerts/" in paths
    assert "post" in paths["/api/v1/alerts/{id}/acknowledge/"]
    assert "post" in paths["/api/v1/alerts/{id}/resolve/"]
