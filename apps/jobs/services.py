"""Every write to jobs. A job is created in the caller's transaction and sent to the broker
only once that transaction commits, so a worker never sees a job whose data is not there."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.jobs import registry
from apps.jobs.models import Job, JobLogEntry

logger = logging.getLogger(__name__)

MAX_MESSAGE = 500


def enqueue_job(
    *,
    kind: str,
    requested_by: Any | None,
    target: models.Model | None = None,
    params: dict[str, Any] | None = None,
    max_attempts: int = 3,
) -> Job:
    """Record a job and send it to a worker when the surrounding transaction commits."""
    if not registry.is_known(kind):
        raise ValidationError({"kind": f"Unknown job kind {kind!r}."})
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            requested_by=requested_by if getattr(requested_by, "is_authenticated", False) else None,
            target_type=ContentType.objects.get_for_model(target) if target is not None else None,
            target_id=str(target.pk) if target is not None else "",
            target_label=str(target)[:255] if target is not None else "",
            params=params or {},
            max_attempts=max_attempts,
            message="Queued",
        )
        audit.record(actor=requested_by, action="job.enqueue", target=job, after={"kind": kind, "params": job.params})
        job_id = job.pk
        transaction.on_commit(lambda: send_job(job_id=job_id))
    return job


def send_job(*, job_id) -> bool:
    """Hand a queued job to the broker. If the broker is down the job stays queued, says so,
    and `resend_stale_queued_jobs` sends it later. Returns whether it was sent."""
    job = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).first()
    if job is None:
        return False
    task = registry.task_for(job.kind)
    try:
        task.apply_async(args=[str(job.pk)], task_id=str(job.pk))
    except Exception as exc:  # any broker/connection error: the job must survive it
        logger.warning("broker unavailable, job %s stays queued: %s", job.pk, exc)
        Job.objects.filter(pk=job.pk).update(message="Queued — broker unavailable, will be sent when it is back")
        return False
    Job.objects.filter(pk=job.pk).update(sent_at=timezone.now(), celery_task_id=str(job.pk), message="Queued")
    return True


def resend_stale_queued_jobs(*, older_than: timedelta | None = None) -> int:
    """Send again jobs that never reached the broker. Returns how many were sent."""
    if older_than is None:
        older_than = timedelta(seconds=settings.JOB_RESEND_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    stale = Job.objects.filter(status=Job.Status.QUEUED, sent_at__isnull=True, created_at__lt=cutoff)
    job_ids = list(stale.values_list("pk", flat=True)[:500])
    return sum(send_job(job_id=job_id) for job_id in job_ids)


def start_attempt(*, job_id, celery_task_id: str = "") -> Job | None:
    """Mark a job running for a new attempt. None when there is nothing to do: the job is
    finished or cancelled (a redelivered message must not run it twice)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None
        if job.attempts >= job.max_attempts:
            _finish(job, status=Job.Status.FAILED, error="Gave up: the worker was lost on every attempt.")
            return None
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or timezone.now()
        job.message = f"Running (attempt {job.attempts} of {job.max_attempts})"
        job.celery_task_id = celery_task_id or job.celery_task_id
        job.error = ""
        job.save(update_fields=["status", "attempts", "started_at", "message", "celery_task_id", "error"])
        audit.record(actor=None, action="job.start", target=job, after={"attempt": job.attempts})
    return job


def report_progress(*, job: Job, percent: int, message: str = "") -> bool:
    """Store progress; returns False when the job was cancelled meanwhile (the task stops)."""
    percent = max(0, min(100, int(percent)))
    updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        progress=percent, message=message[:MAX_MESSAGE]
    )
    job.progress, job.message = percent, message[:MAX_MESSAGE]
    return bool(updated)


def append_log(*, job: Job, message: str, level: str = "info") -> None:
    JobLogEntry.objects.create(job=job, message=message, level=level)


def mark_succeeded(*, job: Job, result: dict | None = None) -> Job:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status != Job.Status.RUNNING:
            return job  # cancelled while finishing: the cancel stands
        job.progress = 100
        _finish(job, status=Job.Status.SUCCEEDED, result=result, message="Done")
    return job


def mark_failed(*, job: Job, error: BaseException | str) -> Job:
    text = error if isinstance(error, str) else _describe(error)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        _finish(job, status=Job.Status.FAILED, error=text, message=text.splitlines()[0][:MAX_MESSAGE])
        JobLogEntry.objects.create(job=job, level="error", message=text)
    return job


def mark_will_retry(*, job: Job, error: BaseException, countdown: float) -> None:
    text = _describe(error)
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
            status=Job.Status.QUEUED,
            error=text,
            message=f"Retrying in {countdown:g}s after: {text.splitlines()[0]}"[:MAX_MESSAGE],
        )
        if updated:
            JobLogEntry.objects.create(job=job, level="warning", message=f"attempt {job.attempts} failed: {text}")


def cancel_job(*, job: Job, by: Any) -> Job:
    """Cancel a queued or running job. Ops and admins may cancel any job; others their own."""
    if not (by.has_perm("jobs.cancel_job") or job.requested_by_id == by.pk):
        raise PermissionDenied("You may not cancel this job.")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            raise ValidationError(f"The job is already {job.status}.")
        before = job.status
        job.status = Job.Status.CANCELLED
        job.finished_at = timezone.now()
        job.message = f"Cancelled by {by.get_username()}"
        job.save(update_fields=["status", "finished_at", "message"])
        audit.record(actor=by, action="job.cancel", target=job, before={"status": before}, after={"status": job.status})
    _revoke(job)
    return job


def retry_job(*, job: Job, by: Any) -> Job:
    """Run a failed or cancelled job again from the start."""
    if not by.has_perm("jobs.retry_job"):
        raise PermissionDenied("Only operations and platform admins may retry jobs.")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
            raise ValidationError(f"Only failed or cancelled jobs can be retried; this one is {job.status}.")
        before = job.status
        job.status = Job.Status.QUEUED
        job.progress, job.attempts = 0, 0
        job.error, job.message = "", f"Queued again by {by.get_username()}"
        job.sent_at = job.started_at = job.finished_at = None
        job.save()
        JobLogEntry.objects.create(job=job, message=f"retried by {by.get_username()}")
        audit.record(actor=by, action="job.retry", target=job, before={"status": before}, after={"status": job.status})
        job_id = job.pk
        transaction.on_commit(lambda: send_job(job_id=job_id))
    return job


def _finish(job: Job, *, status: str, result: dict | None = None, error: str = "", message: str = "") -> None:
    before = job.status
    job.status = status
    job.finished_at = timezone.now()
    job.result = result
    job.error = error
    job.message = message or job.message
    job.save()
    audit.record(
        actor=None,
        action=f"job.{status}",
        target=job,
        before={"status": before},
        after={"status": status, "error": error[:1000]} if error else {"status": status},
    )


def _describe(error: BaseException) -> str:
    summary = f"{type(error).__name__}: {error}"
    trace = "".join(traceback.format_exception(error)[-6:])
    return f"{summary}\n\n{trace}"


def _revoke(job: Job) -> None:
    # Best effort: the running task also checks for cancellation at each progress report.
    # Some transports (the embedded SQL one) have no broadcast channel.
    from config.celery import app

    try:
        app.control.revoke(str(job.pk))
    except Exception as exc:
        logger.info("could not revoke job %s on the broker: %s", job.pk, exc)
