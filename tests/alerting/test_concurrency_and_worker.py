"""Two evaluations at the same moment open one alert and page people once; the beat task and
the webhook delivery job run on a real Celery worker.

Runs against whatever database is configured: PostgreSQL (CI) can let both evaluations find
no open alert, and the partial unique constraint makes the second insert step back; SQLite
serialises the two writers with its IMMEDIATE transactions."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.accounts.models import Notification
from apps.alerting import services, tasks
from apps.alerting.models import Alert, WebhookDelivery
from apps.audit.models import AuditEvent
from apps.jobs.models import Job
from tests.alerting.conftest import fail_job, job_rule
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("round_", range(3))
def test_two_simultaneous_evaluations_open_one_alert_and_notify_once(endpoint, people, round_):
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def evaluate():
        try:
            barrier.wait()
            outcomes.append(services.evaluate_all())
        except Exception as exc:  # pragma: no cover - shown in the assertion
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes, key=str) == [{"opened": 1}, {"still_firing": 1}], outcomes
    assert Alert.objects.filter(rule=rule).count() == 1
    assert AuditEvent.objects.filter(action="alerting.alert.opened").count() == 1
    assert Notification.objects.filter(verb="alerting.alert.fired", recipient=people["owner_user"]).count() == 1


def test_the_beat_task_opens_the_alert_and_the_worker_posts_it_to_the_webhook(
    endpoint, people, receiver, celery_worker
):
    services.create_channel(by=people["owner_user"], name="pager", url=receiver.url, endpoint=endpoint, format="slack")
    job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    # The beat entry's task, run on the worker.
    tasks.evaluate_alert_rules.delay()
    alert = wait_for(lambda: Alert.objects.filter(rule__endpoint=endpoint).first())
    job = wait_for(lambda: Job.objects.filter(kind=services.DELIVER_JOB, status="succeeded").first())
    assert job.result["status"] == "delivered"
    delivery = WebhookDelivery.objects.get(alert=alert)
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["json"]["text"].startswith(
        ":rotating_light: [CRITICAL] Failed jobs on churn-propensity"
    )


def test_a_receiver_that_fails_once_is_retried_by_the_worker(endpoint, people, receiver, celery_worker):
    receiver.statuses = [503]
    services.create_channel(by=people["owner_user"], name="pager", url=receiver.url, endpoint=endpoint)
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    services.evaluate(rule=rule, endpoint=endpoint)
    job = wait_for(lambda: Job.objects.filter(kind=services.DELIVER_JOB, status="succeeded").first())
    assert job.attempts == 2
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert len(receiver.requests) == 2
