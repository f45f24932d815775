"""Builders for the home page tests: a platform with `n` of everything each home lists, made
straight through the ORM (the homes only read), so a test can grow the data and check the
pages' query counts stay put."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts import services as accounts
from apps.accounts.roles import APPROVER
from apps.audit.services import record
from apps.catalog.models import AccessRequest, Dataset
from apps.deployments.models import Approval, ApprovalRule, DeploymentRequest, Endpoint, Environment
from apps.jobs.models import Job
from apps.registry.models import ModelCard, ModelVersion, RegisteredModel
from tests.conftest import make_user
from tests.tracking.factories import make_experiment, make_run

_serial = itertools.count(1)


@pytest.fixture
def environment(db) -> Environment:
    """An environment whose requests any Approver may decide, one approval each."""
    environment = Environment.objects.create(name="production", forbid_unapproved_pii=False)
    ApprovalRule.objects.create(environment=environment, role=APPROVER, required_approvals=1)
    return environment


@pytest.fixture
def stranger(db):
    """Someone outside every team who owns private things nobody else should see."""
    return make_user("stranger")


@pytest.fixture
def populate(users, environment, stranger):
    """`populate(n)` adds n of every kind of row the homes show, visible to the role users."""

    def build(n: int) -> None:
        for _ in range(n):
            add_everything(users, environment)

    return build


def add_everything(users, environment) -> dict:
    i = next(_serial)
    scientist, engineer, approver, ops, admin = (
        users[k] for k in ("scientist", "engineer", "approver", "ops", "admin")
    )
    dataset = Dataset.objects.create(name=f"Dataset {i}", slug=f"dataset-{i}", owner=approver, steward=approver)
    dataset.followers.add(scientist)
    AccessRequest.objects.create(dataset=dataset, requester=scientist, purpose="Churn features.")
    experiment = make_experiment(scientist, visibility="organisation")
    run = make_run(experiment, scientist)
    version = make_version(engineer, run=run, name=f"model-{i}")
    request = DeploymentRequest.objects.create(
        model_version=version,
        environment=environment,
        requester=engineer,
        endpoint_name=f"endpoint-{i}",
        justification="Better recall.",
        state=DeploymentRequest.State.PENDING,
        submitted_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=72),
    )
    decided = DeploymentRequest.objects.create(
        model_version=version,
        environment=environment,
        requester=engineer,
        endpoint_name=f"endpoint-{i}",
        justification="Better recall.",
        state=DeploymentRequest.State.APPROVED,
        decided_at=timezone.now(),
    )
    Approval.objects.create(request=decided, approver=approver, decision=Approval.Decision.APPROVE, comment="Fine.")
    Endpoint.objects.create(name=f"endpoint-{i}", environment=environment, owner=engineer, current_version=version)
    for status in (Job.Status.RUNNING, Job.Status.FAILED, Job.Status.SUCCEEDED):
        Job.objects.create(kind="catalog.profile", status=status, requested_by=scientist, error="boom")
    record(actor=admin, action="dataset.share", target=dataset)
    record(actor=admin, action="team.add_member", object_type="team", object_id=str(i), object_label=f"team {i}")
    newcomer = make_user(f"newcomer-{i}")
    team = accounts.create_team(name=f"Team {i}", by=admin, lead=newcomer)
    accounts.add_team_member(team=team, user=scientist, by=admin)
    return {"dataset": dataset, "experiment": experiment, "version": version, "request": request}


def make_version(owner, *, run=None, name: str | None = None, visibility: str = "organisation", card=None):
    """A registered model with one version and a card (`card`: field values of the card)."""
    model = RegisteredModel.objects.create(
        name=name or f"model-{next(_serial)}",
        owner=owner,
        visibility=visibility,
        creation_timestamp=1,
        last_updated_timestamp=next(_serial),
    )
    version = ModelVersion.objects.create(
        registered_model=model,
        version=1,
        source="mlflow-artifacts:/x",
        run=run,
        storage_location="mlflow-artifacts:/x",
        user=owner,
        creation_timestamp=1,
        last_updated_timestamp=1,
    )
    ModelCard.objects.create(model_version=version, creation_timestamp=1, last_updated_timestamp=1, **(card or {}))
    return version
