"""Periodic work of the value app. Thin: the accrual is services.accrue."""

from __future__ import annotations

from celery import shared_task
from django.db import IntegrityError, OperationalError

from apps.value import services


# Two overlapping runs (a redelivered message) may race to create the same day's keyed row: the
# loser's transaction rolls back and it runs again, finding the row to update.
@shared_task(
    name="value.accrue_compute_costs",
    acks_late=True,
    autoretry_for=(IntegrityError, OperationalError),
    retry_backoff=True,
    max_retries=3,
)
def accrue_compute_costs() -> dict:
    """Hourly (beat): compute cost of jobs and endpoint hours, and value derived from predictions
    served, for yesterday and today. Idempotent: a day's entries are rewritten, never added to."""
    return services.accrue_recent().as_dict()
