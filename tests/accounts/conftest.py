"""Governed objects of every shareable kind, owned by `olga` (a scientist), private."""

import itertools

import pytest

from apps.accounts import services as accounts
from apps.deployments.models import ApprovalRule, Endpoint, Environment
from apps.registry.models import RegisteredModel
from apps.tracking.models import Experiment
from tests.catalog.factories import make_dataset
from tests.conftest import make_user

_names = itertools.count(1)


def make_model(owner, *, name=None, team=None, visibility="private") -> RegisteredModel:
    return RegisteredModel.objects.create(
        name=name or f"model-{next(_names)}",
        owner=owner,
        team=team,
        visibility=visibility,
        creation_timestamp=0,
        last_updated_timestamp=0,
    )


def make_experiment(owner, *, name=None, team=None, visibility="private") -> Experiment:
    return Experiment.objects.create(
        name=name or f"experiment-{next(_names)}",
        owner=owner,
        team=team,
        visibility=visibility,
        creation_time=0,
        last_update_time=0,
    )


def make_environment(name=None) -> Environment:
    environment = Environment.objects.create(name=name or f"env-{next(_names)}")
    ApprovalRule.objects.create(environment=environment, role="Approvers", required_approvals=1)
    return environment


def make_endpoint(owner, *, environment=None, team=None) -> Endpoint:
    return Endpoint.objects.create(
        name=f"endpoint-{next(_names)}", environment=environment or make_environment(), owner=owner, team=team
    )


@pytest.fixture
def owner(db):
    return make_user("olga", "Data scientists")


@pytest.fixture
def team(users):
    created = accounts.create_team(name="Fraud Squad", by=users["admin"])
    accounts.add_team_member(team=created, user=users["engineer"], by=users["admin"])
    return created


@pytest.fixture
def objects(owner) -> dict:
    """One private object per kind, owned by olga (environments have no owner: admins manage them)."""
    return {
        "dataset": make_dataset(owner, "Loans", visibility="private", profiled=False),
        "experiment": make_experiment(owner),
        "model": make_model(owner),
        "endpoint": make_endpoint(owner),
        "environment": make_environment(),
    }
