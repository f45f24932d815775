import pytest

from apps.accounts import services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "status"), [("admin", 200), ("approver", 200), ("scientist", 404), ("ops", 404), ("nobody", 404)]
)
def test_global_audit_log_is_for_admins_and_approvers(users, client, role, status):
    client.force_login(users[role])
    assert client.get("/audit/").status_code == status


@pytest.mark.parametrize(("role", "count"), [("admin", 1), ("approver", 1), ("scientist", 0)])
def test_audit_api_lists_only_for_admins_and_approvers(users, api_client, role, count):
    services.create_team(name="Fraud", by=users["admin"])
    api_client.force_login(users[role])
    body = api_client.get("/api/v1/audit-events/", {"action": "team.create"}).json()
    assert body["count"] == count


def test_audit_log_filters_by_actor_and_action(users, client):
    services.create_team(name="Fraud", by=users["admin"])
    services.create_token(user=users["scientist"], name="t")
    client.force_login(users["admin"])
    page = client.get("/audit/", {"action": "token."}).context["page"]
    assert [e.action for e in page] == ["token.create"]
    page = client.get("/audit/", {"actor": "admin"}).context["page"]
    assert {e.action for e in page} == {"team.create"}


def test_object_history_is_hidden_from_those_who_cannot_see_the_object(users, client):
    team = services.create_team(name="Fraud", by=users["admin"])
    url = f"/audit/accounts.team/{team.pk}/"
    client.force_login(users["approver"])
    assert client.get(url).status_code == 200
    client.force_login(users["scientist"])
    assert client.get(url).status_code == 404


def test_an_app_can_open_object_history_to_those_who_see_the_object(users, client):
    from apps.audit.selectors import _object_visibility, register_object_visibility

    register_object_visibility("x.thing", lambda user, object_id: user.username == "scientist")
    try:
        client.force_login(users["scientist"])
        assert client.get("/audit/x.thing/1/").status_code == 200
        client.force_login(users["engineer"])
        assert client.get("/audit/x.thing/1/").status_code == 404
    finally:
        _object_visibility.pop("x.thing")
