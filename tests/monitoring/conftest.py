"""Monitoring test fixtures: jobs stay queued unless a test runs a real worker."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def jobs_stay_queued_without_a_worker(request, monkeypatch):
    if "celery_worker" not in request.fixturenames:
        monkeypatch.setattr("apps.jobs.services.send_job", lambda *, job_id: False)


@pytest.fixture(autouse=True)
def no_background_flusher(monkeypatch):
    """Telemetry is flushed explicitly in tests (telemetry.recorder.flush())."""
    monkeypatch.setattr("apps.monitoring.telemetry.START_THREAD", False, raising=False)
