"""Builders for the value tests: use cases with monthly entries, teams, endpoints with
revisions and jobs with run times."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.accounts import services as accounts
from apps.deployments.models import Endpoint, EndpointRevision, Environment
from apps.registry.models import ModelVersion, RegisteredModel
from apps.value import services
from apps.value.models import CostEntry, UseCase, ValueEntry

_names = itertools.count(1)


@pytest.fixture(autouse=True)
def jobs_stay_queued_without_a_worker(monkeypatch):
    monkeypatch.setattr("apps.jobs.services.send_job", lambda *, job_id: False)


@pytest.fixture
def risk_team(users):
    team = accounts.create_team(name="Risk Analytics", by=users["admin"], lead=users["owner"])
    accounts.add_team_member(team=team, user=users["owner"], by=users["admin"])
    return team


def make_use_case(owner, name: str | None = None, **fields) -> UseCase:
    return services.create_use_case(by=owner, name=name or f"Use case {next(_names)}", **fields)


def cost(use_case, start: date, end: date, amount: str, category="people", currency=None, **extra) -> CostEntry:
    return CostEntry.objects.create(
        use_case=use_case,
        category=category,
        period_start=start,
        period_end=end,
        amount=Decimal(amount),
        currency=currency or use_case.currency,
        **extra,
    )


def value(use_case, start: date, end: date, amount: str, currency=None, **extra) -> ValueEntry:
    return ValueEntry.objects.create(
        use_case=use_case,
        period_start=start,
        period_end=end,
        amount=Decimal(amount),
        currency=currency or use_case.currency,
        evidence="measured",
        **extra,
    )


def make_model(owner, *, visibility="organisation", team=None, name=None) -> RegisteredModel:
    stamp = int(timezone.now().timestamp() * 1000)
    return RegisteredModel.objects.create(
        name=name or f"model-{next(_names)}",
        owner=owner,
        team=team,
        visibility=visibility,
        creation_timestamp=stamp,
        last_updated_timestamp=stamp,
    )


def make_version(model: RegisteredModel, owner) -> ModelVersion:
    number = model.versions.count() + 1
    return ModelVersion.objects.create(
        registered_model=model,
        version=number,
        source="mlflow-artifacts:/x",
        storage_location="mlflow-artifacts:/x",
        user=owner,
        creation_timestamp=0,
        last_updated_timestamp=0,
    )


def make_endpoint(
    owner, version: ModelVersion, environment: Environment, *, started, ended=None, name=None
) -> Endpoint:
    endpoint = Endpoint.objects.create(
        name=name or f"endpoint-{next(_names)}",
        environment=environment,
        owner=owner,
        current_version=version,
        state=Endpoint.State.LIVE if ended is None else Endpoint.State.RETIRED,
    )
    EndpointRevision.objects.create(endpoint=endpoint, model_version=version, started_at=started, ended_at=ended)
    return endpoint
