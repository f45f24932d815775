"""The Celery side of jobs: `@job_task(kind=...)` turns a function into an idempotent,
progress-reporting task bound to a `Job` row.

    @job_task(kind="catalog.profile", label="Profile a dataset version")
    def profile_version(*, job: Job, ctx: JobContext) -> dict: ...

The function gets the Job and a context to report progress and log lines; what it returns
is stored as the job's result. `RetryableJobError` (and database hiccups) are retried with
exponential backoff; any other exception fails the job with its message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, close_old_connections

from apps.jobs import registry, services
from apps.jobs.models import Job


class RetryableJobError(Exception):
    """A transient failure (network, a busy service): the job is tried again later."""


class JobCancelled(Exception):
    """Raised inside a job when someone cancelled it; the task stops quietly."""


class JobContext:
    def __init__(self, job: Job):
        self.job = job

    def progress(self, percent: int, message: str = "") -> None:
        if not services.report_progress(job=self.job, percent=percent, message=message):
            raise JobCancelled()

    def log(self, message: str, level: str = "info") -> None:
        services.append_log(job=self.job, message=message, level=level)


def retry_countdown(attempt: int) -> float:
    """Exponential backoff: base, 2×base, 4×base… capped at five minutes."""
    return min(300.0, settings.JOB_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))


def job_task(*, kind: str, label: str, queue: str | None = None) -> Callable:
    def decorate(body: Callable[..., dict | None]) -> Any:
        options: dict[str, Any] = {"bind": True, "name": kind, "acks_late": True, "max_retries": None}
        if queue:
            options["queue"] = queue

        @shared_task(**options)
        def run_job(self, job_id: str) -> None:
            close_old_connections()
            job = services.start_attempt(job_id=job_id, celery_task_id=self.request.id or "")
            if job is None:
                return
            try:
                result = body(job=job, ctx=JobContext(job))
            except JobCancelled:
                return
            except (RetryableJobError, OperationalError) as exc:
                if job.attempts < job.max_attempts:
                    countdown = retry_countdown(job.attempts)
                    services.mark_will_retry(job=job, error=exc, countdown=countdown)
                    raise self.retry(exc=exc, countdown=countdown) from exc
                services.mark_failed(job=job, error=exc)
                return
            except Exception as exc:
                services.mark_failed(job=job, error=exc)
                return
            services.mark_succeeded(job=job, result=result)

        run_job.__doc__ = body.__doc__
        registry.register(kind, run_job, label)
        return run_job

    return decorate
