"""Each telemetry rule kind measured against real telemetry rows written through monitoring's
own service (record_minute), drift reports and outcomes: it opens an alert when the condition
holds, stays quiet when it does not, and decides nothing without data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerting import services
from apps.alerting.models import Alert
from apps.monitoring.models import Outcome
from tests.monitoring.factories import make_drift_report, record_minute

pytestmark = pytest.mark.django_db


def _rule(endpoint, people, kind, threshold, **fields):
    fields.setdefault("name", kind)
    return services.create_rule(by=people["owner_user"], kind=kind, endpoint=endpoint, threshold=threshold, **fields)


def _ago(minutes: float):
    return timezone.now() - timedelta(minutes=minutes)


def test_error_rate_above_its_threshold_fires(endpoint, people):
    rule = _rule(endpoint, people, "error_rate", 5, window_minutes=10)
    record_minute(endpoint=endpoint, minute=_ago(3), requests=100, errors={"model_error": 8})
    assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"
    alert = Alert.objects.get()
    assert alert.value == pytest.approx(8.0)
    assert "8 of 100 requests failed" in alert.summary


def test_error_rate_below_its_threshold_is_clear(endpoint, people):
    rule = _rule(endpoint, people, "error_rate", 5, window_minutes=10)
    record_minute(endpoint=endpoint, minute=_ago(3), requests=100, errors=2)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "clear"


def test_error_rate_without_requests_decides_nothing(endpoint, people):
    rule = _rule(endpoint, people, "error_rate", 5)
    record_minute(endpoint=endpoint, minute=_ago(120), requests=100, errors=50)  # outside the window
    assert services.evaluate(rule=rule, endpoint=endpoint) == "no_data"


def test_latency_p95_above_its_threshold_fires_and_clears_when_fast_again(endpoint, people):
    rule = _rule(endpoint, people, "latency_p95", 500, window_minutes=5)
    record_minute(endpoint=endpoint, minute=_ago(2), requests=100, latencies_ms=[12.0] * 80 + [900.0] * 20)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"
    assert Alert.objects.get().value > 500
    later = timezone.now() + timedelta(minutes=10)
    record_minute(endpoint=endpoint, minute=later - timedelta(minutes=2), requests=100, latencies_ms=[15.0] * 100)
    assert services.evaluate(rule=rule, endpoint=endpoint, now=later) == "resolved"


def test_traffic_drop_against_the_previous_window_fires(endpoint, people):
    rule = _rule(endpoint, people, "traffic_drop", 50, window_minutes=10)
    record_minute(endpoint=endpoint, minute=_ago(15), requests=200)
    record_minute(endpoint=endpoint, minute=_ago(5), requests=40)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"
    assert Alert.objects.get().value == pytest.approx(80.0)


def test_traffic_steady_against_last_week_is_clear(endpoint, people):
    rule = _rule(endpoint, people, "traffic_drop", 50, window_minutes=10, baseline="last_week")
    record_minute(endpoint=endpoint, minute=_ago(7 * 24 * 60 + 5), requests=100)
    record_minute(endpoint=endpoint, minute=_ago(5), requests=90)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "clear"


def test_traffic_drop_without_a_baseline_decides_nothing(endpoint, people):
    rule = _rule(endpoint, people, "traffic_drop", 50, window_minutes=10)
    record_minute(endpoint=endpoint, minute=_ago(5), requests=10)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "no_data"


def test_drift_score_at_its_threshold_fires_on_the_latest_report(endpoint, people):
    rule = _rule(endpoint, people, "drift_score", 0.25)
    make_drift_report(endpoint, score=0.05, verdict="ok", at=_ago(60))
    make_drift_report(endpoint, score=0.31, verdict="alert", at=_ago(5))
    assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"
    alert = Alert.objects.get()
    assert alert.value == pytest.approx(0.31) and "(alert)" in alert.summary


def test_drift_score_below_its_threshold_is_clear(endpoint, people):
    rule = _rule(endpoint, people, "drift_score", 0.25)
    make_drift_report(endpoint, score=0.12, verdict="warn")
    assert services.evaluate(rule=rule, endpoint=endpoint) == "clear"


def _outcomes(endpoint, pairs, minutes_ago=5):
    at = _ago(minutes_ago)
    Outcome.objects.bulk_create(
        Outcome(endpoint=endpoint, request_id=f"r{i}", row=0, actual=a, predicted=p, predicted_at=at)
        for i, (a, p) in enumerate(pairs)
    )


def test_live_accuracy_below_its_threshold_fires(endpoint, people):
    rule = _rule(endpoint, people, "live_metric_below", 0.8, metric_name="accuracy", window_minutes=60)
    _outcomes(endpoint, [(1, 1)] * 6 + [(1, 0)] * 4)
    assert services.evaluate(rule=rule, endpoint=endpoint) == "opened"
    assert Alert.objects.get().value == pytest.approx(0.6)


def test_live_accuracy_above_its_threshold_is_clear(endpoint, people):
    rule = _rule(endpoint, people, "live_metric_below", 0.8, metric_name="accuracy", window_minutes=60)
    _outcomes(endpoint, [(1, 1)] * 9 + [(1, 0)])
    assert services.evaluate(rule=rule, endpoint=endpoint) == "clear"


def test_a_live_metric_without_outcomes_decides_nothing(endpoint, people):
    rule = _rule(endpoint, people, "live_metric_below", 0.8, metric_name="accuracy")
    assert services.evaluate(rule=rule, endpoint=endpoint) == "no_data"


def test_a_live_metric_rule_must_name_its_metric(endpoint, people):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        _rule(endpoint, people, "live_metric_below", 0.8)
    assert "metric_name" in caught.value.message_dict


def test_a_percentage_threshold_must_be_a_percentage(endpoint, people):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        _rule(endpoint, people, "error_rate", 250)
    assert "threshold" in caught.value.message_dict
