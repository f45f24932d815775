"""In a real browser: the endpoint monitoring page draws its Plotly charts under the CSP, the
ops page loads its htmx fragments, and a drift report charts each feature."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.monitoring.services import record_minute
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in
from tests.monitoring.factories import make_drift_report, make_endpoint

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_operator_reads_an_endpoints_charts_and_drift_report(users, live_server, browser, screenshot):  # noqa: F811
    from playwright.sync_api import expect

    endpoint = make_endpoint(users["engineer"], name="churn")
    now = timezone.now().replace(second=0, microsecond=0)
    for minutes in range(1, 30):
        record_minute(endpoint=endpoint, minute=now - dt.timedelta(minutes=minutes), latencies_ms=[8.0] * 20 + [90.0])
    report = make_drift_report(
        endpoint,
        score=0.3,
        verdict="alert",
        features=[
            {
                "name": "score",
                "kind": "numeric",
                "psi": 0.3,
                "ks": 0.2,
                "verdict": "alert",
                "n": 100,
                "nulls": 0,
                "reference": {"edges": [0, 1, 2], "counts": [0, 50, 50, 0]},
                "current": {"counts": [10, 60, 30, 0]},
            }
        ],
    )
    page = sign_in(browser, live_server, "ops", PASSWORD)
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/monitoring/")
    expect(page.get_by_test_id("ops-endpoint-row")).to_have_count(1)
    expect(page.get_by_test_id("worker-health")).to_be_visible()
    page.goto(f"{live_server.url}/monitoring/endpoints/churn/?range=1h")
    expect(page.locator("[data-testid=fig-traffic] .main-svg").first).to_be_visible()
    expect(page.locator("[data-testid=fig-latency] .main-svg").first).to_be_visible()
    screenshot(page, "monitoring-endpoint")
    page.goto(f"{live_server.url}/monitoring/endpoints/churn/drift/{report.pk}/")
    expect(page.locator("[data-testid=feature-chart] .main-svg").first).to_be_visible()
    screenshot(page, "monitoring-drift-report")
    assert not [e for e in errors if "Content Security Policy" in e]
