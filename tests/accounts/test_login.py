import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_and_logout(users, client):
    response = client.post(reverse("login"), {"username": "scientist", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_repeated_failed_logins_lock_the_account_even_with_the_right_password(users, client, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(reverse("login"), {"username": "scientist", "password": "wrong"})
        assert response.status_code in (200, 429)
    locked = client.post(reverse("login"), {"username": "scientist", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert client.get(reverse("home")).status_code == 302


def test_password_change_requires_the_old_password_and_a_strong_new_one(users, client):
    client.force_login(users["scientist"])
    weak = client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": "123", "new_password2": "123"}
    )
    assert weak.status_code == 200 and weak.context["form"].errors
    ok = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "correct horse battery", "new_password2": "correct horse battery"},
    )
    assert ok.status_code == 302
