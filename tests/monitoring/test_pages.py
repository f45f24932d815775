"""Monitoring pages: who sees what (anonymous → login, no grant → 404, viewer → 200), the
charts and ranges, drift reports, settings and the home widget's constant query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from apps.monitoring.models import EndpointMonitoring
from apps.monitoring.services import record_minute
from tests.conftest import make_user
from tests.monitoring.factories import make_drift_report, make_endpoint

NOW = timezone.now().replace(second=0, microsecond=0)


@pytest.fixture
def endpoint(users):
    endpoint = make_endpoint(users["engineer"], name="churn")
    record_minute(endpoint=endpoint, minute=NOW - dt.timedelta(minutes=3), requests=20, errors={"bad_request": 2})
    return endpoint


@pytest.fixture
def report(endpoint):
    return make_drift_report(
        endpoint,
        score=0.4,
        verdict="alert",
        features=[
            {
                "name": "a",
                "kind": "numeric",
                "psi": 0.4,
                "ks": 0.3,
                "ks_pvalue": 0.001,
                "verdict": "alert",
                "n": 100,
                "nulls": 0,
                "reference": {"edges": [0, 1, 2], "counts": [0, 50, 50, 0]},
                "current": {"counts": [0, 10, 80, 10]},
            },
            {
                "name": "region",
                "kind": "categorical",
                "psi": 0.01,
                "js": 0.02,
                "verdict": "ok",
                "n": 100,
                "nulls": 0,
                "reference": {"categories": {"north": 50, "__other__": 50}},
                "current": {"categories": {"north": 48, "__other__": 52}},
            },
        ],
    )


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def viewer(endpoint):
    """A user who may see the endpoint only because they were granted invoke on it."""
    user = make_user("viewer")
    assign_perm("deployments.invoke_endpoint", user, endpoint)
    return user


def urls(endpoint, report):
    return [
        reverse("monitoring:endpoint", args=[endpoint.name]),
        reverse("monitoring:drift_report", args=[endpoint.name, report.pk]),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(endpoint, report):
    for url in [reverse("monitoring:ops"), *urls(endpoint, report)]:
        response = Client().get(url)
        assert response.status_code == 302
        assert reverse("login") in response["Location"]


def test_a_user_without_a_grant_gets_404_for_the_endpoints_pages(users, endpoint, report):
    client = login(users["nobody"])
    for url in urls(endpoint, report):
        assert client.get(url).status_code == 404


def test_a_user_without_a_grant_does_not_see_the_endpoint_on_the_ops_page(users, endpoint):
    response = login(users["nobody"]).get(reverse("monitoring:ops"))
    assert response.status_code == 200
    assert b"churn" not in response.content


def test_an_endpoint_viewer_sees_its_pages(endpoint, report):
    client = login(viewer(endpoint))
    for url in urls(endpoint, report):
        assert client.get(url).status_code == 200


def test_ops_page_lists_visible_endpoints_with_health(users, endpoint, report):
    response = login(users["ops"]).get(reverse("monitoring:ops"))
    assert response.status_code == 200
    assert response.context["rows"][0]["health"].status == "alert"  # 10 % errors and drift
    assert b"<svg" in response.content


def test_ops_page_embeds_the_open_alerts_fragment_when_alerting_is_installed(users, endpoint):
    response = login(users["ops"]).get(reverse("monitoring:ops"))
    try:
        expected = reverse("alerting:open_alerts_fragment")
    except Exception:  # alerting not installed: the page says so
        expected = None
    assert response.context["open_alerts_url"] == expected


def test_ops_page_queries_do_not_grow_with_endpoints(users, django_assert_max_num_queries):
    for i in range(12):
        e = make_endpoint(users["engineer"], name=f"e{i}")
        record_minute(endpoint=e, minute=NOW - dt.timedelta(minutes=1), requests=3)
        make_drift_report(e)
    client = login(users["ops"])
    with django_assert_max_num_queries(20):
        client.get(reverse("monitoring:ops"))


@pytest.mark.parametrize("range_key", ["1h", "24h", "7d", "30d"])
def test_endpoint_page_draws_charts_for_each_range(users, endpoint, report, range_key):
    response = login(users["engineer"]).get(reverse("monitoring:endpoint", args=[endpoint.name]), {"range": range_key})
    assert response.status_code == 200
    assert response.context["range"] == range_key
    assert b'data-plotly-src="fig-traffic"' in response.content
    assert b'data-plotly-src="fig-drift"' in response.content


def test_an_unknown_range_falls_back_to_a_day(users, endpoint):
    response = login(users["engineer"]).get(reverse("monitoring:endpoint", args=[endpoint.name]), {"range": "1y"})
    assert response.context["range"] == "24h"


def test_drift_report_page_charts_each_feature_against_training(users, endpoint, report):
    response = login(users["engineer"]).get(reverse("monitoring:drift_report", args=[endpoint.name, report.pk]))
    assert response.status_code == 200
    assert response.content.count(b'data-testid="feature-chart"') == 2
    assert b'id="fig-score"' in response.content


def test_a_report_of_another_endpoint_is_404(users, endpoint, report):
    other = make_endpoint(users["engineer"], name="other")
    url = reverse("monitoring:drift_report", args=[other.name, report.pk])
    assert login(users["engineer"]).get(url).status_code == 404


def test_the_owner_changes_the_drift_thresholds(users, endpoint):
    url = reverse("monitoring:endpoint_settings", args=[endpoint.name])
    response = login(users["engineer"]).post(
        url,
        {"drift_warn_psi": "0.2", "drift_alert_psi": "0.4", "drift_window_hours": "12", "payload_retention_days": "7"},
    )
    assert response.status_code == 302
    config = EndpointMonitoring.objects.get(endpoint=endpoint)
    assert (config.drift_warn_psi, config.drift_alert_psi, config.drift_window_hours) == (0.2, 0.4, 12)


def test_changing_thresholds_is_audited(users, endpoint):
    from apps.audit.models import AuditEvent

    login(users["engineer"]).post(
        reverse("monitoring:endpoint_settings", args=[endpoint.name]),
        {"drift_warn_psi": "0.2", "drift_alert_psi": "0.4", "drift_window_hours": "12", "payload_retention_days": "7"},
    )
    event = AuditEvent.objects.get(action="monitoring.settings_changed")
    assert event.object_id == str(endpoint.pk)


def test_an_alert_threshold_below_the_warning_is_a_400(users, endpoint):
    response = login(users["engineer"]).post(
        reverse("monitoring:endpoint_settings", args=[endpoint.name]),
        {"drift_warn_psi": "0.3", "drift_alert_psi": "0.1", "drift_window_hours": "24", "payload_retention_days": "7"},
    )
    assert response.status_code == 400
    assert not EndpointMonitoring.objects.exists()


def test_a_viewer_may_not_change_the_settings(endpoint):
    url = reverse("monitoring:endpoint_settings", args=[endpoint.name])
    assert login(viewer(endpoint)).get(url).status_code == 403


def test_a_user_without_a_grant_gets_404_for_the_settings(users, endpoint):
    url = reverse("monitoring:endpoint_settings", args=[endpoint.name])
    assert login(users["nobody"]).get(url).status_code == 404


def test_home_widget_summarises_health_in_constant_queries(users, django_assert_max_num_queries):
    for i in range(3):
        make_endpoint(users["engineer"], name=f"w{i}")
    client = login(users["ops"])
    client.get(reverse("monitoring:home_widget"))
    with django_assert_max_num_queries(8) as small:
        client.get(reverse("monitoring:home_widget"))
    for i in range(10):
        e = make_endpoint(users["engineer"], name=f"x{i}")
        record_minute(endpoint=e, minute=NOW - dt.timedelta(minutes=1), requests=1)
        make_drift_report(e)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(reverse("monitoring:home_widget"))
    assert b"Endpoint health" in response.content


def test_health_fragment_reports_a_silent_worker(users):
    response = login(users["ops"]).get(reverse("monitoring:health_fragment"))
    assert response.status_code == 200
    assert b"no periodic task has run yet" in response.content


def test_the_endpoint_card_fragment_is_404_without_a_grant_and_shown_to_viewers(users, endpoint):
    url = reverse("monitoring:endpoint_fragment", args=[endpoint.name])
    assert login(users["nobody"]).get(url).status_code == 404
    response = login(viewer(endpoint)).get(url)
    assert response.status_code == 200
    assert b"20 requests" in response.content


def test_drift_report_page_names_the_reference_only_to_who_may_see_its_dataset(users, endpoint, report):
    from tests.catalog.factories import make_dataset

    dataset = make_dataset(users["engineer"], "secret-training", visibility="private")
    report.reference_version = dataset.versions.get()
    report.save(update_fields=["reference_version"])
    url = reverse("monitoring:drift_report", args=[endpoint.name, report.pk])
    assert b"secret-training" in login(users["engineer"]).get(url).content
    response = login(viewer(endpoint)).get(url)
    assert response.status_code == 200
    assert b"secret-training" not in response.content
    assert b"a dataset you may not see" in response.content
