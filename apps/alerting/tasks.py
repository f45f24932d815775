"""Alerting's Celery side: the periodic evaluation (beat, every minute) and the webhook
delivery job. Thin: the work is in services."""

from __future__ import annotations

from celery import shared_task

from apps.alerting import services
from apps.jobs.runner import JobContext, RetryableJobError, job_task


@shared_task(name="alerting.evaluate_alert_rules", acks_late=True)
def evaluate_alert_rules() -> dict[str, int]:
    """Evaluate every enabled rule. Safe to run twice at once: the database keeps one open
    alert per rule and subject."""
    return services.evaluate_all()


@job_task(kind=services.DELIVER_JOB, label="Post an alert to a webhook")
def deliver_webhook(*, job, ctx: JobContext) -> dict:
    """Post the delivery's payload; a failure is retried with backoff until the job's last
    attempt, which marks the delivery failed."""
    final = job.attempts >= job.max_attempts
    try:
        delivery = services.deliver(delivery_id=int(job.params["delivery_id"]), final=final)
    except services.DeliveryFailed as exc:
        raise RetryableJobError(str(exc)) from exc
    return {"delivery": delivery.pk, "status": delivery.status, "response_status": delivery.response_status}
