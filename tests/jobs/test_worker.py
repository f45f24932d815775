"""Jobs end to end on a real Celery worker consuming the configured broker."""

import pytest

from apps.audit.models import AuditEvent
from apps.jobs import services
from apps.jobs.models import Job
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def finished(job):
    def check():
        job.refresh_from_db()
        return job.is_finished

    return check


def test_a_job_runs_on_the_worker_and_records_progress_and_result(users, celery_worker):
    job = services.enqueue_job(kind="tests.count_to", requested_by=users["scientist"], params={"steps": 4})
    wait_for(finished(job))
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress == 100
    assert job.result == {"counted": 4}
    assert job.attempts == 1
    assert job.started_at and job.finished_at and job.sent_at
    assert [e.message for e in job.log_entries.all()] == ["step 1", "step 2", "step 3", "step 4"]
    actions = list(
        AuditEvent.objects.filter(object_id=str(job.pk)).order_by("sequence").values_list("action", flat=True)
    )
    assert actions == ["job.enqueue", "job.start", "job.succeeded"]


def test_a_failing_job_ends_failed_with_its_error(users, celery_worker):
    job = services.enqueue_job(kind="tests.explode", requested_by=users["scientist"])
    wait_for(finished(job))
    assert job.status == Job.Status.FAILED
    assert "ValueError: the input file is malformed at line 3" in job.error
    assert job.message.startswith("ValueError")
    assert job.attempts == 1, "a plain error is not retried"
    assert job.log_entries.filter(level="error").exists()


def test_a_transient_failure_is_retried_with_backoff(users, celery_worker):
    job = services.enqueue_job(kind="tests.flaky", requested_by=users["scientist"])
    wait_for(finished(job))
    assert job.status == Job.Status.SUCCEEDED
    assert job.attempts == 2
    assert job.log_entries.filter(level="warning", message__contains="service busy").exists()


def test_ops_retry_a_failed_job_on_the_worker(users, celery_worker):
    job = services.enqueue_job(kind="tests.explode", requested_by=users["scientist"])
    wait_for(finished(job))
    services.retry_job(job=job, by=users["ops"])
    job.refresh_from_db()
    assert job.status in (Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.FAILED)
    wait_for(finished(job))
    assert job.status == Job.Status.FAILED and job.attempts == 1
    assert AuditEvent.objects.filter(action="job.retry", object_id=str(job.pk), actor_username="ops").exists()


def test_a_redelivered_message_for_a_finished_job_does_nothing(users, celery_worker):
    job = services.enqueue_job(kind="tests.count_to", requested_by=users["scientist"], params={"steps": 1})
    wait_for(finished(job))
    assert services.start_attempt(job_id=job.pk) is None
    job.refresh_from_db()
    assert job.attempts == 1


def test_a_job_queued_while_the_broker_is_down_runs_once_it_is_back(users, celery_worker):
    from datetime import timedelta

    from tests.broker import broker_down

    with broker_down():
        job = services.enqueue_job(kind="tests.count_to", requested_by=users["scientist"], params={"steps": 1})
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.sent_at is None
    assert "broker unavailable" in job.message
    assert services.resend_stale_queued_jobs(older_than=timedelta(0)) == 1
    wait_for(finished(job))
    assert job.status == Job.Status.SUCCEEDED
