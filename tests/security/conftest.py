"""One shared "world" for the security tests: an owner with private objects of every kind, a
signed-in user with no grants (the stranger) and the organisation-visible objects whose
existence is public. Built once per test class inside a transaction that is rolled back at the
end; each test runs in its own savepoint, so a test's writes never leak into the next one."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, override_settings

from apps.accounts import services as accounts
from apps.accounts.roles import ENGINEER, SCIENTIST

PASSWORD = "a-long-test-password-42"
_serial = itertools.count(1)


def _user(username: str, *roles: str):
    from apps.accounts.models import User

    user = User.objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.test")
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


def build_world(tmp) -> SimpleNamespace:
    """Every object a route's URL can name. To cover a new kind of object, create it here
    (owned by `owner`, private where the model has visibility) and add it to the namespace."""
    from django.utils import timezone

    from apps.catalog import services as catalog
    from apps.catalog.models import Dataset
    from apps.deployments.models import Endpoint
    from apps.jobs.models import Job
    from apps.registry.models import RegisteredModel
    from apps.tracking import artifacts
    from tests.deployments.conftest import make_environment, make_request, make_version
    from tests.tracking.factories import make_run

    owner = _user("owner-sec", SCIENTIST, ENGINEER)
    stranger = _user("stranger-sec", SCIENTIST)
    colleague = _user("colleague-sec", SCIENTIST)  # asks for access to the owner's public dataset
    team = accounts.create_team(name="Owner Team", by=owner, lead=owner)
    accounts.add_team_member(team=team, user=owner, by=owner)
    token, owner_secret = accounts.create_token(user=owner, name="owner script")
    _, stranger_secret = accounts.create_token(user=stranger, name="stranger script")

    dataset = catalog.create_dataset(by=owner, name="Private churn data", visibility=Dataset.Visibility.PRIVATE)
    for content in (b"id,age\n1,30\n2,40\n", b"id,age,plan\n1,30,a\n2,40,b\n"):
        _profiled(
            catalog.add_version_from_upload(dataset=dataset, by=owner, upload=SimpleUploadedFile("d.csv", content))
        )
    public_secret = catalog.create_dataset(
        by=owner,
        name="Confidential salaries",
        visibility=Dataset.Visibility.ORGANISATION,
        classification=Dataset.Classification.CONFIDENTIAL,
    )
    _profiled(
        catalog.add_version_from_upload(
            dataset=public_secret, by=owner, upload=SimpleUploadedFile("salaries.csv", b"id,salary\n1,10\n")
        )
    )
    access_request = catalog.request_access(dataset=public_secret, by=colleague, purpose="Pay equity study")
    dataset.refresh_from_db()
    column = dataset.current_version.columns.first()

    version = make_version(owner, visibility="private")
    model: RegisteredModel = version.registered_model
    run = version.run
    experiment = run.experiment
    root = artifacts.root_key(run.artifact_uri)
    artifacts.save_stream(artifacts.join(root, "notes.txt"), [b"hello"])
    other_run = make_run(experiment, owner)
    environment = make_environment(f"sec-env-{next(_serial)}", allow_pickle=True)
    deployment_request = make_request(owner, version, environment, endpoint="sec-churn")
    endpoint = Endpoint.objects.create(
        name="sec-churn", environment=environment, owner=owner, current_version=version, live_request=deployment_request
    )
    job = Job.objects.create(kind="catalog.profile", requested_by=owner, created_at=timezone.now())

    from apps.value.models import CostEntry, UseCase

    use_case = UseCase.objects.create(name="Private churn programme", slug="sec-churn-programme", owner=owner)
    UseCase.objects.filter(pk=use_case.pk).update(visibility="private")
    today = timezone.now().date()
    cost = CostEntry.objects.create(
        use_case=use_case, category=CostEntry.Category.values[0], period_start=today, period_end=today, amount=10
    )
    from datetime import timedelta

    from apps.alerting.models import Alert, AlertRule, Silence

    rule = AlertRule.objects.create(
        name="Failed jobs",
        kind="job_failures",
        endpoint=endpoint,
        comparison=AlertRule.Comparison.GTE,
        threshold=1,
        owner=owner,
    )
    alert = Alert.objects.create(
        rule=rule,
        endpoint=endpoint,
        subject_key="sec",
        subject_label="sec",
        severity="warning",
        summary="x",
        threshold=1,
    )
    silence = Silence.objects.create(
        endpoint=endpoint, ends_at=timezone.now() + timedelta(hours=1), reason="maintenance", created_by=owner
    )
    from apps.monitoring.models import DriftReport

    drift_report = DriftReport.objects.create(
        endpoint=endpoint, model_version=version, window_start=timezone.now(), window_end=timezone.now()
    )
    return SimpleNamespace(
        drift_report=drift_report,
        alert_rule=rule,
        alert=alert,
        silence=silence,
        owner=owner,
        stranger=stranger,
        colleague=colleague,
        secrets={"owner": owner_secret, "stranger": stranger_secret},
        team=team,
        token=token,
        dataset=dataset,
        public_secret=public_secret,
        access_request=access_request,
        column=column,
        experiment=experiment,
        run=run,
        other_run=other_run,
        model=model,
        version=version,
        environment=environment,
        deployment_request=deployment_request,
        endpoint=endpoint,
        job=job,
        use_case=use_case,
        cost=cost,
        artifact_root=root,
    )


def _profiled(version):
    """Profile a version's file at once, as the worker's job would."""
    from pathlib import Path

    from apps.catalog import services as catalog
    from apps.catalog.profiling import profile_file, sha256_file

    path = Path(version.file.path)
    digest, size = sha256_file(path)
    profile = profile_file(path, version.format, progress=lambda *_: None)
    return catalog.apply_profile(version=version, profile=profile.to_dict(), content_hash=digest, size_bytes=size)


@pytest.fixture(scope="class")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The shared objects, in a transaction rolled back after the class's last test."""
    tmp = tmp_path_factory.mktemp("security")
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp / "media")},
        },
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp / "artifacts")},
        },
    }
    isolated = override_settings(
        STORAGES=storages, MEDIA_ROOT=str(tmp / "media"), SERVING_CACHE_DIR=str(tmp / "serving-cache")
    )
    # Serving telemetry (monitoring) would flush from its own thread, outside the test transaction.
    quiet = mock.patch("apps.deployments.serving.observers._observers", [])
    with django_db_blocker.unblock(), isolated, quiet, transaction.atomic():
        # Jobs are recorded but never sent: no worker runs here.
        with mock.patch("apps.jobs.services.send_job", lambda *, job_id: False):
            objects = build_world(tmp)
        yield objects
        transaction.set_rollback(True)


@pytest.fixture(scope="class")
def session_cookies(world, django_db_blocker):
    """A signed-in session per role, created once; each test gets a fresh client carrying it."""
    cookies = {}
    with django_db_blocker.unblock():
        for role in ("owner", "stranger"):
            client = Client()
            client.force_login(getattr(world, role))
            cookies[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return cookies


@pytest.fixture
def client_as(session_cookies):
    def make(role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.cookies[settings.SESSION_COOKIE_NAME] = session_cookies[role]
        return client

    return make
