"""Shared fixtures. Settings are read lazily, so the test environment is chosen here."""

import os

os.environ.setdefault("CAUSEWAY_ENV", "test")

import time  # noqa: E402

import pytest  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.accounts.roles import ADMIN, APPROVER, BUSINESS_OWNER, ENGINEER, OPERATIONS, SCIENTIST  # noqa: E402
from tests import job_kinds  # noqa: E402,F401  (registers test-only job kinds before any worker starts)

ROLE_USERS = {
    "scientist": SCIENTIST,
    "engineer": ENGINEER,
    "approver": APPROVER,
    "ops": OPERATIONS,
    "owner": BUSINESS_OWNER,
    "admin": ADMIN,
}
PASSWORD = "a-long-test-password-42"


def make_user(username: str, role: str | None = None, **extra) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.test", **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def users(db) -> dict[str, User]:
    """One user per role, named after the role, plus `nobody` who has no role."""
    created = {slug: make_user(slug, role) for slug, role in ROLE_USERS.items()}
    created["nobody"] = make_user("nobody")
    return created


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker (solo pool, in a thread of this process) consuming the configured
    broker: Redis in CI, the embedded SQL broker locally."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with (
        django_db_blocker.unblock(),
        start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=20) as worker,
    ):
        yield worker


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    """Poll until `predicate()` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
