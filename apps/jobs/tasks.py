"""Periodic job housekeeping."""

from celery import shared_task

from apps.jobs import services


@shared_task(name="jobs.resend_stale_queued_jobs", acks_late=True)
def resend_stale_queued_jobs() -> int:
    return services.resend_stale_queued_jobs()
