"""The periodic tasks under beat: their names match the schedule, the flush records the workers'
heartbeat, the purge clears payloads; and a real worker runs the drift job."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from apps.monitoring import tasks
from apps.monitoring.models import DriftReport, Heartbeat
from apps.monitoring.services import record_minute
from tests.conftest import wait_for
from tests.monitoring.factories import make_endpoint


def test_the_beat_schedule_names_existing_tasks():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for task in (tasks.flush_telemetry, tasks.compute_drift_reports, tasks.purge_expired_payloads):
        assert task.name in scheduled


def test_the_flush_task_records_the_workers_heartbeat(db):
    tasks.flush_telemetry()
    assert Heartbeat.objects.get(key=tasks.HEARTBEAT_KEY).at > timezone.now() - dt.timedelta(minutes=1)


def test_the_purge_task_reports_what_it_cleared(db):
    assert tasks.purge_expired_payloads() == {"payloads_cleared": 0, "predictions_deleted": 0}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_computes_drift_reports(users, celery_worker):
    endpoint = make_endpoint(users["engineer"])
    record_minute(endpoint=endpoint, minute=timezone.now() - dt.timedelta(minutes=2), requests=5)
    tasks.compute_drift_reports.delay()
    report = wait_for(lambda: DriftReport.objects.filter(endpoint=endpoint).first())
    assert "No profiled training dataset" in report.note
