"""The hourly accrual on a real Celery worker consuming the configured broker, as beat sends it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.deployments.models import Environment
from apps.value import services, tasks
from apps.value.models import CostEntry
from tests.conftest import wait_for
from tests.value.conftest import make_endpoint, make_model, make_use_case, make_version

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_the_beat_task_accrues_endpoint_hours_on_the_worker(users, celery_worker):
    production = Environment.objects.create(name="production", forbid_unapproved_pii=False)
    services.set_compute_rate(by=users["admin"], environment=production, endpoint_hour_rate="2.00", job_hour_rate="1")
    use_case = make_use_case(users["owner"])
    model = make_model(users["owner"])
    use_case.registered_models.add(model)
    started = timezone.now() - timedelta(hours=3)
    make_endpoint(users["engineer"], make_version(model, users["owner"]), production, started=started)

    tasks.accrue_compute_costs.delay()

    total = wait_for(lambda: sum(CostEntry.objects.filter(use_case=use_case).values_list("amount", flat=True)))
    assert 5 < total <= 6.01  # about three hours at 2.00 (the worker's "now" is a moment later)
