"""/api/v1/use-cases: read with ROI figures, create entries; same visibility as the pages."""

from datetime import date

import pytest

from apps.value.models import CostEntry, UseCase
from tests.value.conftest import cost, make_use_case, value

pytestmark = pytest.mark.django_db
JAN = (date(2025, 1, 1), date(2025, 1, 31))


@pytest.fixture
def cases(users):
    public = make_use_case(users["owner"], "Churn")
    cost(public, *JAN, "1000")
    value(public, *JAN, "1250")
    hidden = make_use_case(users["owner"], "Secret", visibility=UseCase.Visibility.PRIVATE)
    return {"public": public, "hidden": hidden}


def test_the_list_shows_visible_use_cases_with_decimal_figures(api_client, users, cases, django_assert_max_num_queries):
    api_client.force_authenticate(users["scientist"])
    with django_assert_max_num_queries(8):
        response = api_client.get("/api/v1/use-cases/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["slug"] for row in results] == ["churn"]
    summary = results[0]["summary"]
    assert (summary["cost"], summary["value"], summary["net"], summary["roi"]) == (
        "1000.00",
        "1250.00",
        "250.00",
        "0.2500",
    )


def test_a_range_prorates_the_figures(api_client, users, cases):
    api_client.force_authenticate(users["owner"])
    response = api_client.get("/api/v1/use-cases/churn/", {"start": "2025-01-01", "end": "2025-01-10"})
    assert response.json()["summary"]["cost"] == "322.58"


def test_a_bad_date_is_a_400(api_client, users, cases):
    api_client.force_authenticate(users["owner"])
    response = api_client.get("/api/v1/use-cases/churn/", {"start": "soon"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_a_hidden_use_case_is_404(api_client, users, cases):
    api_client.force_authenticate(users["scientist"])
    assert api_client.get(f"/api/v1/use-cases/{cases['hidden'].slug}/").status_code == 404
    assert api_client.get(f"/api/v1/use-cases/{cases['hidden'].slug}/costs/").status_code == 404


def test_the_owner_creates_a_cost_entry(api_client, users, cases):
    api_client.force_authenticate(users["owner"])
    response = api_client.post(
        "/api/v1/use-cases/churn/costs/",
        {"category": "compute", "period_start": "2025-02-01", "period_end": "2025-02-28", "amount": "12.34"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == "12.34" and response.json()["source"] == "entered"
    assert CostEntry.objects.filter(use_case=cases["public"]).count() == 2


def test_value_without_evidence_is_a_400_with_the_reason(api_client, users, cases):
    api_client.force_authenticate(users["owner"])
    response = api_client.post(
        "/api/v1/use-cases/churn/values/",
        {"period_start": "2025-02-01", "period_end": "2025-02-28", "amount": "10"},
        format="json",
    )
    assert response.status_code == 400
    assert "evidence" in response.json()["error"]["details"]


def test_an_outsider_cannot_create_entries(api_client, users, cases):
    api_client.force_authenticate(users["scientist"])
    response = api_client.post(
        "/api/v1/use-cases/churn/costs/",
        {"category": "compute", "period_start": "2025-02-01", "period_end": "2025-02-28", "amount": "1"},
        format="json",
    )
    assert response.status_code == 403


def test_the_entries_are_listed(api_client, users, cases):
    api_client.force_authenticate(users["scientist"])
    response = api_client.get("/api/v1/use-cases/churn/values/")
    assert [row["amount"] for row in response.json()["results"]] == ["1250.00"]


def test_the_schema_documents_the_use_case_api(api_client, users):
    api_client.force_authenticate(users["scientist"])
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    paths = response.json()["paths"]
    assert "/api/v1/use-cases/" in paths
    assert "post" in paths["/api/v1/use-cases/{slug}/costs/"]
