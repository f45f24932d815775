import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_database_broker_and_storage(client):
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_reports_a_broker_failure(client):
    from tests.broker import broker_down

    with broker_down():
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["database"]["ok"] is True


def test_api_requires_authentication_with_the_error_shape(api_client):
    response = api_client.get("/api/v1/me")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")


def test_unknown_api_route_answers_json_404(users, api_client):
    api_client.force_login(users["scientist"])
    response = api_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_malformed_json_gives_400_with_the_error_shape(users, api_client):
    api_client.force_login(users["scientist"])
    response = api_client.post("/api/v1/tokens/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_openapi_schema_and_docs_are_served_locally(users, client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/me" in schema.content
    client.force_login(users["scientist"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_every_response_carries_a_request_id(client):
    assert client.get("/healthz").headers["X-Request-ID"]
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-1").headers["X-Request-ID"] == "abc-1"
    assert client.get("/healthz", HTTP_X_REQUEST_ID="bad id <script>").headers["X-Request-ID"] != "bad id <script>"


def test_markdown_is_sanitized():
    from apps.core.markdown import render_markdown

    html = render_markdown("**bold** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>")
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html


def test_planner_statistics_task_analyzes_sqlite():
    from django.db import connection

    from apps.core.tasks import refresh_planner_statistics

    assert refresh_planner_statistics() == ("analyzed" if connection.vendor == "sqlite" else "skipped")
