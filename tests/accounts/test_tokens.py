import base64
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import PersonalAccessToken

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def basic(username, secret):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()}


def test_token_is_stored_hashed_and_authenticates_with_bearer(users, api_client):
    token, raw = services.create_token(user=users["scientist"], name="laptop")
    assert raw.startswith("cw_") and raw not in token.token_hash
    assert PersonalAccessToken.objects.filter(token_hash=services.hash_token(raw)).exists()
    response = api_client.get(ME, **bearer(raw))
    assert response.status_code == 200
    assert response.json()["username"] == "scientist"
    assert response.json()["roles"] == ["Data scientists"]


def test_last_used_time_is_recorded(users, api_client):
    token, raw = services.create_token(user=users["scientist"], name="laptop")
    assert token.last_used_at is None
    api_client.get(ME, **bearer(raw))
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_basic_auth_with_username_and_token(users, api_client):
    _, raw = services.create_token(user=users["engineer"], name="ci")
    assert api_client.get(ME, **basic("engineer", raw)).status_code == 200


def test_basic_auth_with_another_users_name_is_refused(users, api_client):
    _, raw = services.create_token(user=users["engineer"], name="ci")
    response = api_client.get(ME, **basic("scientist", raw))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_basic_auth_with_the_account_password_is_not_accepted(users, api_client):
    assert api_client.get(ME, **basic("engineer", "a-long-test-password-42")).status_code == 401


def test_revoked_token_is_refused(users, api_client):
    token, raw = services.create_token(user=users["scientist"], name="old")
    services.revoke_token(token=token, by=users["scientist"])
    assert api_client.get(ME, **bearer(raw)).status_code == 401


def test_expired_token_is_refused(users, api_client):
    token, raw = services.create_token(user=users["scientist"], name="old", expires_in_days=1)
    PersonalAccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_client.get(ME, **bearer(raw)).status_code == 401


def test_token_of_a_deactivated_user_is_refused(users, api_client):
    _, raw = services.create_token(user=users["scientist"], name="x")
    users["scientist"].is_active = False
    users["scientist"].save()
    assert api_client.get(ME, **bearer(raw)).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer cw_unknown", "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode()],
)
def test_malformed_credentials_are_refused(users, api_client, header):
    assert api_client.get(ME, HTTP_AUTHORIZATION=header).status_code == 401


def test_only_owner_or_admin_may_revoke(users):
    from django.core.exceptions import PermissionDenied

    token, _ = services.create_token(user=users["scientist"], name="x")
    with pytest.raises(PermissionDenied):
        services.revoke_token(token=token, by=users["engineer"])
    services.revoke_token(token=token, by=users["admin"])
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_expiry_is_bounded(users):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.create_token(user=users["scientist"], name="forever", expires_in_days=100000)


def test_api_creates_a_token_shown_once(users, api_client):
    api_client.force_login(users["scientist"])
    created = api_client.post("/api/v1/tokens/", {"name": "script", "expires_in_days": 30}, format="json")
    assert created.status_code == 201
    raw = created.json()["token"]
    listed = api_client.get("/api/v1/tokens/").json()["results"]
    assert listed[0]["name"] == "script" and "token" not in listed[0]
    api_client.logout()
    assert api_client.get(ME, **bearer(raw)).status_code == 200


def test_api_token_create_with_bad_input_gives_the_error_shape(users, api_client):
    api_client.force_login(users["scientist"])
    response = api_client.post("/api/v1/tokens/", {"expires_in_days": -3}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["details"]) == {"name", "expires_in_days"}


def test_a_user_cannot_see_or_revoke_another_users_token(users, api_client):
    token, _ = services.create_token(user=users["engineer"], name="theirs")
    api_client.force_login(users["scientist"])
    assert api_client.get(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert api_client.post(f"/api/v1/tokens/{token.pk}/revoke/").status_code == 404


def test_token_page_shows_the_secret_once(users, client):
    client.force_login(users["scientist"])
    response = client.post(reverse("accounts:token_create"), {"name": "mlflow", "expires_in_days": 30})
    assert response.status_code == 200
    token = PersonalAccessToken.objects.get(name="mlflow")
    raw = response.context["raw_token"]
    assert services.hash_token(raw) == token.token_hash
    profile = client.get(reverse("accounts:profile"))
    assert raw not in profile.content.decode()
    assert token.prefix in profile.content.decode()


def test_token_page_revokes(users, client):
    token, _ = services.create_token(user=users["scientist"], name="x")
    client.force_login(users["scientist"])
    client.post(reverse("accounts:token_revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.state == "revoked"


def test_create_token_command_prints_a_working_token(users, api_client):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_token", "ops", "--name", "svc", "--expires-days", "7", stdout=out)
    raw = out.getvalue().strip()
    assert api_client.get(ME, **bearer(raw)).json()["username"] == "ops"
