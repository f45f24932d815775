"""Periodic monitoring work under Celery beat (config/settings.py CELERY_BEAT_SCHEDULE). Thin:
the work is in telemetry, drift and services."""

from __future__ import annotations

import socket

from celery import shared_task

from apps.monitoring import drift, services
from apps.monitoring.telemetry import recorder

HEARTBEAT_KEY = "worker"


@shared_task(name="monitoring.flush_telemetry", acks_late=True)
def flush_telemetry() -> int:
    """Flush this process's telemetry buffer. Serving processes flush their own from a
    background thread; this covers requests served inside a worker process (and is harmless
    elsewhere: an empty buffer writes nothing). Its run is the workers' heartbeat."""
    services.beat(key=HEARTBEAT_KEY, detail=socket.gethostname())
    return recorder.flush()


@shared_task(name="monitoring.compute_drift_reports", acks_late=True)
def compute_drift_reports() -> dict:
    """A drift report per live endpoint that served something in its window."""
    return drift.compute_all()


@shared_task(name="monitoring.purge_expired_payloads", acks_late=True)
def purge_expired_payloads() -> dict:
    """Raw payloads past their endpoint's retention, prediction records past the global one."""
    return services.purge_expired()
