"""/metrics for Prometheus: off unless configured, a bearer token or an allowed network."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from apps.monitoring.services import record_minute
from tests.monitoring.factories import make_drift_report, make_endpoint


@pytest.fixture
def traffic(users):
    endpoint = make_endpoint(users["engineer"], name="churn")
    now = timezone.now().replace(second=0, microsecond=0)
    record_minute(endpoint=endpoint, minute=now - dt.timedelta(minutes=2), latencies_ms=[5.0] * 9 + [300.0], errors=1)
    make_drift_report(endpoint, score=0.3, verdict="alert")
    return endpoint


def test_metrics_are_404_when_not_configured(db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    assert Client().get("/metrics").status_code == 404


def test_a_missing_or_wrong_token_is_401(db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "s3cret-token", []
    assert Client().get("/metrics").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer nope").get("/metrics").status_code == 401


def test_a_client_outside_the_allowed_networks_is_404(db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="192.168.1.5").get("/metrics").status_code == 404


def test_a_client_in_an_allowed_network_reads_the_metrics(traffic, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", ["127.0.0.0/8"]
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert response.status_code == 200


def test_the_token_reads_request_latency_drift_and_job_metrics(traffic, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "s3cret-token", []
    response = Client(HTTP_AUTHORIZATION="Bearer s3cret-token").get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'causeway_endpoint_requests{endpoint="churn"} 10.0' in text
    assert 'causeway_endpoint_errors{endpoint="churn"} 1.0' in text
    assert 'causeway_endpoint_latency_ms_bucket{endpoint="churn",le="5.0"} 9.0' in text
    assert 'causeway_endpoint_latency_ms_count{endpoint="churn"} 10.0' in text
    assert 'causeway_endpoint_drift_alert{endpoint="churn"} 1.0' in text
    assert "causeway_jobs_failed_last_hour 0.0" in text
