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

pytest_plugins = ["tests.browser"]  # the one `browser` fixture every test directory shares


@pytest.fixture(autouse=True)
def forget_serving_telemetry():
    """Calls served in one test are observed by monitoring's in-process recorder; they must not
    be flushed into a later test's database, where their endpoints no longer exist."""
    yield
    from apps.monitoring.telemetry import recorder

    recorder.discard()


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


@pytest.fixture
def artifact_root(settings, tmp_path):
    """Run and model artifacts in a folder of this test's own."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    return tmp_path / "artifacts"


@pytest.fixture
def client_for(live_server, artifact_root, monkeypatch):
    """Points the stock mlflow client (tracking and registry) at the live server as `user`,
    with their personal token, as a scientist would with MLFLOW_TRACKING_URI/TOKEN."""
    import mlflow

    def connect(user):
        from apps.accounts import services as accounts

        _, secret = accounts.create_token(user=user, name="mlflow")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", secret)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(live_server.url)
        mlflow.set_registry_uri(live_server.url)
        # The fluent API remembers the last experiment per process; each test starts afresh.
        monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # set_experiment() exports it
        return mlflow.MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)

    yield connect
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    while mlflow.active_run():
        mlflow.end_run()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    """Poll until `predicate()` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
