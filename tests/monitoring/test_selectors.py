"""The public reads other apps build on: window stats, live metrics, predictions served."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.monitoring import selectors, services
from apps.monitoring.models import Outcome
from tests.monitoring.factories import make_drift_report, make_endpoint

NOW = timezone.now().replace(second=0, microsecond=0)


@pytest.fixture
def endpoint(users):
    return make_endpoint(users["engineer"])


def test_window_stats_sum_requests_errors_and_rows_over_the_window(endpoint):
    services.record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(minutes=2), requests=10, errors=1, rows=30)
    services.record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(minutes=1), requests=30, errors=3, rows=60)
    services.record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(hours=2), requests=99, errors=99)
    stats = selectors.endpoint_window_stats(endpoint, start=NOW - dt.timedelta(hours=1), end=NOW)
    assert (stats.requests, stats.errors, stats.rows) == (40, 4, 90)
    assert stats.error_rate == pytest.approx(0.1)


def test_window_without_requests_has_no_error_rate_nor_latency(endpoint):
    stats = selectors.endpoint_window_stats(endpoint, start=NOW - dt.timedelta(hours=1), end=NOW)
    assert stats.requests == 0
    assert stats.error_rate is None
    assert stats.latency_p95_ms is None


def test_latency_percentiles_come_from_the_bucket_histogram(endpoint):
    # 95 fast requests (in the 10–25 ms bucket) and 5 slow ones (500–1000 ms).
    services.record_minute(endpoint=endpoint, minute=NOW, latencies_ms=[12.0] * 95 + [700.0] * 5)
    stats = selectors.endpoint_window_stats(endpoint, start=NOW, end=NOW + dt.timedelta(minutes=1))
    assert 10 <= stats.latency_p50_ms <= 25
    assert 10 <= stats.latency_p95_ms <= 25
    assert 500 <= stats.latency_p99_ms <= 1000


def test_window_stats_cost_one_query(endpoint, django_assert_num_queries):
    services.record_minute(endpoint=endpoint, minute=NOW, requests=5)
    with django_assert_num_queries(1):
        selectors.endpoint_window_stats(endpoint, start=NOW - dt.timedelta(days=30), end=NOW + dt.timedelta(minutes=1))


def test_two_versions_in_the_same_minute_are_kept_apart_and_summed_together(users, endpoint, artifact_root):
    from tests.deployments.conftest import make_version

    primary, canary = make_version(users["engineer"]), make_version(users["engineer"])
    services.record_minute(endpoint=endpoint, minute=NOW, requests=90, model_version=primary)
    services.record_minute(endpoint=endpoint, minute=NOW, requests=10, model_version=canary)
    window = {"start": NOW, "end": NOW + dt.timedelta(minutes=1)}
    assert selectors.endpoint_window_stats(endpoint, **window).requests == 100
    by_version = selectors.window_stats_by_version(endpoint, **window)
    assert (by_version[primary.pk].requests, by_version[canary.pk].requests) == (90, 10)


def test_record_minute_adds_to_an_existing_minute(endpoint):
    services.record_minute(endpoint=endpoint, minute=NOW, requests=3, errors={"bad_request": 1})
    row = services.record_minute(endpoint=endpoint, minute=NOW, requests=2, errors={"bad_request": 1, "model_error": 1})
    assert row.requests == 5
    assert row.errors_by_kind == {"bad_request": 2, "model_error": 1}


def test_latest_drift_report_is_the_newest(endpoint):
    make_drift_report(endpoint, score=0.3, verdict="alert", at=NOW - dt.timedelta(hours=1))
    newest = make_drift_report(endpoint, score=0.01, verdict="ok", at=NOW)
    assert selectors.latest_drift_report(endpoint) == newest


def test_latest_drift_report_is_none_without_reports(endpoint):
    assert selectors.latest_drift_report(endpoint) is None


def test_predictions_served_counts_rows_in_the_window(endpoint):
    services.record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(minutes=5), requests=2, rows=7)
    services.record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(days=3), requests=2, rows=100)
    assert selectors.predictions_served(endpoint, start=NOW - dt.timedelta(hours=1), end=NOW) == 7


def test_predictions_served_by_day_groups_endpoints_and_days_in_one_query(users, django_assert_num_queries):
    first, second = make_endpoint(users["engineer"]), make_endpoint(users["engineer"])
    day = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
    services.record_minute(endpoint=first, minute=day, requests=1, rows=5)
    services.record_minute(endpoint=first, minute=day + dt.timedelta(hours=1), requests=1, rows=6)
    services.record_minute(endpoint=first, minute=day + dt.timedelta(days=1), requests=1, rows=7)
    services.record_minute(endpoint=second, minute=day, requests=1, rows=8)
    with django_assert_num_queries(1):
        served = selectors.predictions_served_by_day(
            [first, second], start=day - dt.timedelta(days=1), end=day + dt.timedelta(days=5)
        )
    assert served == {
        (first.pk, dt.date(2026, 3, 10)): 11,
        (first.pk, dt.date(2026, 3, 11)): 7,
        (second.pk, dt.date(2026, 3, 10)): 8,
    }


def _outcome(endpoint, request_id, actual, predicted, at=NOW):
    return Outcome.objects.create(
        endpoint=endpoint, request_id=request_id, actual=actual, predicted=predicted, predicted_at=at
    )


def test_live_accuracy_compares_labels(endpoint):
    for i, (actual, predicted) in enumerate([(1, 1), (0, 0), (1, 0), (0, 0)]):
        _outcome(endpoint, f"r{i}", actual, predicted)
    metrics = selectors.live_metrics(endpoint, start=NOW - dt.timedelta(hours=1), end=NOW + dt.timedelta(minutes=1))
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["labelled"] == 4


def test_live_rmse_for_numeric_outcomes(endpoint):
    _outcome(endpoint, "a", 10.5, 12.5)
    _outcome(endpoint, "b", 3.5, 3.5)
    metrics = selectors.live_metrics(endpoint, start=NOW - dt.timedelta(hours=1), end=NOW + dt.timedelta(minutes=1))
    assert metrics["rmse"] == pytest.approx((4 / 2) ** 0.5)
    assert metrics["mae"] == pytest.approx(1.0)


def test_live_metrics_are_empty_without_outcomes(endpoint):
    assert selectors.live_metrics(endpoint, start=NOW - dt.timedelta(hours=1), end=NOW) == {}
