"""Compute cost accrued from job run time and live endpoint hours at per-environment rates, and
value derived from predictions served: idempotent per day."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from apps.deployments.models import DeploymentRequest, Environment
from apps.jobs.models import Job
from apps.value import services, tasks
from apps.value.models import ComputeRate, CostEntry, ValueEntry
from tests.catalog.factories import make_dataset
from tests.value.conftest import make_endpoint, make_model, make_use_case, make_version

pytestmark = pytest.mark.django_db
D = Decimal
NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def production(db):
    return Environment.objects.create(name="production", forbid_unapproved_pii=False)


@pytest.fixture
def rates(users, production):
    services.set_compute_rate(by=users["admin"], environment=None, endpoint_hour_rate="1.00", job_hour_rate="2.00")
    services.set_compute_rate(
        by=users["admin"], environment=production, endpoint_hour_rate="3.00", job_hour_rate="5.00"
    )


def _job(target, started, finished, status=Job.Status.SUCCEEDED) -> Job:
    return Job.objects.create(
        kind="catalog.profile_dataset_version",
        status=status,
        target_type=ContentType.objects.get_for_model(target),
        target_id=str(target.pk),
        started_at=started,
        finished_at=finished,
    )


def _accrued(use_case, day: int) -> Decimal | None:
    row = CostEntry.objects.filter(use_case=use_case, accrual_key=f"compute:2025-03-{day:02d}").first()
    return None if row is None else row.amount


def test_only_admins_set_compute_rates(users):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.set_compute_rate(by=users["owner"], endpoint_hour_rate="1", job_hour_rate="1")


def test_job_run_time_on_a_linked_dataset_costs_the_default_job_rate(users, rates):
    use_case = make_use_case(users["owner"])
    dataset = make_dataset(users["scientist"], "Customers")
    use_case.datasets.add(dataset)
    _job(dataset.current_version, at(1, 10), at(1, 11, 30))  # 1.5 h at 2.00
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 3), now=NOW)
    assert _accrued(use_case, 1) == D("3.00")
    entry = CostEntry.objects.get(use_case=use_case)
    assert (entry.category, entry.source, entry.period_start, entry.period_end) == (
        "compute",
        "accrued",
        date(2025, 3, 1),
        date(2025, 3, 1),
    )


def test_a_job_across_midnight_is_split_between_the_days(users, rates):
    use_case = make_use_case(users["owner"])
    dataset = make_dataset(users["scientist"], "Customers")
    use_case.datasets.add(dataset)
    _job(dataset.current_version, at(1, 23), at(2, 2))  # 1 h then 2 h
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 3), now=NOW)
    assert (_accrued(use_case, 1), _accrued(use_case, 2)) == (D("2.00"), D("4.00"))


def test_a_running_job_is_costed_until_now(users, rates):
    use_case = make_use_case(users["owner"])
    dataset = make_dataset(users["scientist"], "Customers")
    use_case.datasets.add(dataset)
    _job(dataset.current_version, at(3, 10), None, status=Job.Status.RUNNING)
    services.accrue(start=date(2025, 3, 3), end=date(2025, 3, 3), now=NOW)
    assert _accrued(use_case, 3) == D("4.00")


def test_deployment_jobs_cost_their_environments_rate(users, rates, production):
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    version = make_version(model, users["owner"])
    request = DeploymentRequest.objects.create(
        model_version=version,
        environment=production,
        requester=users["engineer"],
        endpoint_name="churn",
        justification="x",
    )
    _job(request, at(1, 10), at(1, 10, 30))  # 0.5 h at 5.00
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 1), now=NOW)
    assert _accrued(use_case, 1) == D("2.50")


def test_live_endpoint_hours_cost_the_environments_endpoint_rate(users, rates, production):
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=at(1, 12))
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 3), now=NOW)
    # 12 h on the 1st, 24 h on the 2nd, 12 h on the 3rd until now, at 3.00.
    assert [_accrued(use_case, day) for day in (1, 2, 3)] == [D("36.00"), D("72.00"), D("36.00")]


def test_a_retired_endpoint_stops_costing(users, rates, production):
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    endpoint = make_endpoint(
        users["engineer"], make_version(model, users["owner"]), production, started=at(1, 0), ended=at(1, 6)
    )
    use_case.endpoints.add(endpoint)
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 3), now=NOW)
    assert [_accrued(use_case, day) for day in (1, 2, 3)] == [D("18.00"), None, None]


def test_an_environment_without_its_own_rate_uses_the_default(users, rates):
    staging = Environment.objects.create(name="staging", forbid_unapproved_pii=False)
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    make_endpoint(users["engineer"], make_version(model, users["owner"]), staging, started=at(2, 0), ended=at(2, 10))
    services.accrue(start=date(2025, 3, 2), end=date(2025, 3, 2), now=NOW)
    assert _accrued(use_case, 2) == D("10.00")


def test_what_is_linked_to_two_use_cases_is_split_between_them(users, rates, production):
    first, second = make_use_case(users["owner"]), make_use_case(users["owner"])
    model = make_model(users["owner"])
    first.registered_models.add(model)
    second.registered_models.add(model)
    make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=at(2, 0), ended=at(2, 10))
    services.accrue(start=date(2025, 3, 2), end=date(2025, 3, 2), now=NOW)
    assert (_accrued(first, 2), _accrued(second, 2)) == (D("15.00"), D("15.00"))


def test_accruing_twice_gives_the_same_books(users, rates, production):
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=at(1, 12))
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 3), now=NOW)
    first = list(CostEntry.objects.order_by("period_start").values_list("period_start", "amount"))
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 3), now=NOW)
    assert list(CostEntry.objects.order_by("period_start").values_list("period_start", "amount")) == first
    assert CostEntry.objects.count() == 3


def test_today_grows_as_the_hours_pass(users, rates, production):
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=at(3, 0))
    services.accrue(start=date(2025, 3, 3), end=date(2025, 3, 3), now=at(3, 1))
    services.accrue(start=date(2025, 3, 3), end=date(2025, 3, 3), now=at(3, 4))
    assert _accrued(use_case, 3) == D("12.00")
    assert CostEntry.objects.count() == 1


def test_nothing_is_accrued_without_rates(users, production):
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=at(1, 0))
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 2), now=NOW)
    assert not CostEntry.objects.exists()


def test_a_use_case_in_another_currency_than_the_rates_is_skipped_and_named(users, rates, production):
    use_case = make_use_case(users["owner"], "Sterling case", currency="GBP")
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=at(1, 0))
    result = services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 1), now=NOW)
    assert not CostEntry.objects.exists()
    assert any("Sterling case" in message for message in result.skipped)


def test_value_is_derived_from_predictions_served(users, rates, production, monkeypatch):
    use_case = make_use_case(users["owner"], value_per_prediction=Decimal("0.05"))
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    endpoint = make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=at(1, 0))
    monkeypatch.setattr(
        "apps.value.accrual.predictions_by_day",
        lambda endpoints, *, start, end: {(endpoint.pk, date(2025, 3, 1)): 1000, (endpoint.pk, date(2025, 3, 2)): 10},
    )
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 2), now=NOW)
    rows = list(ValueEntry.objects.order_by("period_start"))
    assert [(row.period_start, row.amount, row.method) for row in rows] == [
        (date(2025, 3, 1), D("50.00"), "derived_predictions"),
        (date(2025, 3, 2), D("0.50"), "derived_predictions"),
    ]
    assert "1000 predictions" in rows[0].evidence


def test_the_beat_task_has_the_scheduled_name_and_accrues(users, rates, production, settings):
    assert tasks.accrue_compute_costs.name == "value.accrue_compute_costs"
    assert "value.accrue_compute_costs" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    from django.utils import timezone

    make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=timezone.now())
    result = tasks.accrue_compute_costs.apply().get()
    assert result["days"] == 2
    assert ComputeRate.objects.count() == 2


def test_value_is_derived_from_the_traffic_monitoring_recorded(users, rates, production):
    from apps.monitoring.models import TrafficMinute

    use_case = make_use_case(users["owner"], value_per_prediction=Decimal("0.10"))
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    version = make_version(model, users["owner"])
    endpoint = make_endpoint(users["engineer"], version, production, started=at(1, 0))
    TrafficMinute.objects.create(endpoint=endpoint, model_version=version, minute=at(1, 9), requests=5, rows=300)
    TrafficMinute.objects.create(endpoint=endpoint, model_version=version, minute=at(1, 23, 59), requests=1, rows=20)
    TrafficMinute.objects.create(endpoint=endpoint, model_version=version, minute=at(2, 0), requests=1, rows=7)
    services.accrue(start=date(2025, 3, 1), end=date(2025, 3, 2), now=NOW)
    assert list(ValueEntry.objects.order_by("period_start").values_list("period_start", "amount")) == [
        (date(2025, 3, 1), D("32.00")),
        (date(2025, 3, 2), D("0.70")),
    ]
