"""The monitoring demo's generator, on a small fixture (the full load_demo is tested in
tests/test_demo_data.py): weeks of telemetry, a drift alert at the end, live accuracy."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from apps.monitoring import demo, selectors
from apps.monitoring.models import DriftReport, TrafficMinute
from tests.deployments.conftest import make_version
from tests.monitoring.factories import make_endpoint, make_training_data

PROFILE = {
    "row_count": 1000,
    "columns": [
        {
            "name": "score",
            "type": "integer",
            "null_count": 0,
            "histogram": {
                "edges": [400 + 20 * i for i in range(21)],
                "counts": [5, 10, 20, 30, 45, 60, 80, 95, 100, 105, 100, 95, 80, 60, 45, 30, 20, 10, 5, 5],
            },
        }
    ],
}


@pytest.fixture
def endpoint(users, artifact_root):
    version = make_version(users["engineer"])
    make_training_data(version, users["engineer"], profile=PROFILE)
    return make_endpoint(users["engineer"], name="churn-propensity", version=version)


def test_demo_writes_weeks_of_telemetry_quickly_and_ends_in_a_drift_alert(endpoint):
    started = time.monotonic()
    demo.load({})
    assert time.monotonic() - started < 60
    oldest = TrafficMinute.objects.order_by("minute").first().minute
    assert timezone.now() - oldest > dt.timedelta(days=27)
    assert selectors.latest_drift_report(endpoint).verdict == "alert"
    assert DriftReport.objects.filter(endpoint=endpoint, verdict="ok").exists()
    now = timezone.now()
    assert selectors.live_metrics(endpoint, start=now - dt.timedelta(days=14), end=now)["accuracy"] > 0.6


def test_demo_is_loaded_once(endpoint):
    demo.load({})
    count = TrafficMinute.objects.count()
    demo.load({})
    assert TrafficMinute.objects.count() == count
