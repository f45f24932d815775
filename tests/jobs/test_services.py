import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.jobs import services
from apps.jobs.models import Job

pytestmark = pytest.mark.django_db


def test_unknown_job_kind_is_refused(users):
    with pytest.raises(ValidationError):
        services.enqueue_job(kind="no.such.kind", requested_by=users["scientist"])


def test_a_job_rolled_back_with_its_change_is_never_recorded_nor_sent(users, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        services.enqueue_job(kind="tests.count_to", requested_by=users["scientist"])
        raise RuntimeError("the change that needed the job failed")
    assert not Job.objects.exists()
    assert not AuditEvent.objects.filter(action="job.enqueue").exists()
    assert callbacks == []


def test_a_job_is_sent_only_when_its_transaction_commits(users, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.enqueue_job(kind="tests.count_to", requested_by=users["scientist"], target=users["scientist"])
    assert len(callbacks) == 1
    assert job.target_label == "scientist" and job.target_id == str(users["scientist"].pk)


def test_broker_down_leaves_the_job_queued_with_a_clear_message(users):
    from tests.broker import broker_down

    job = Job.objects.create(kind="tests.count_to")
    with broker_down():
        assert services.send_job(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    assert "broker unavailable" in job.message


def test_requester_may_cancel_own_job_but_not_others(users):
    job = Job.objects.create(kind="tests.count_to", requested_by=users["scientist"])
    with pytest.raises(PermissionDenied):
        services.cancel_job(job=job, by=users["engineer"])
    services.cancel_job(job=job, by=users["scientist"])
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    with pytest.raises(ValidationError):
        services.cancel_job(job=job, by=users["scientist"])


def test_only_ops_and_admins_may_retry(users):
    job = Job.objects.create(kind="tests.count_to", requested_by=users["scientist"], status=Job.Status.FAILED)
    with pytest.raises(PermissionDenied):
        services.retry_job(job=job, by=users["scientist"])
    services.retry_job(job=job, by=users["admin"])
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.attempts == 0


def test_a_succeeded_job_cannot_be_retried(users):
    job = Job.objects.create(kind="tests.count_to", status=Job.Status.SUCCEEDED)
    with pytest.raises(ValidationError):
        services.retry_job(job=job, by=users["ops"])


def test_a_cancelled_running_job_stops_at_its_next_progress_report(users):
    from apps.jobs.runner import JobCancelled, JobContext

    job = Job.objects.create(kind="tests.count_to", requested_by=users["scientist"])
    job = services.start_attempt(job_id=job.pk)
    services.cancel_job(job=job, by=users["scientist"])
    with pytest.raises(JobCancelled):
        JobContext(job).progress(50, "half way")
