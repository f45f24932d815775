"""In a real browser: the endpoint's owner opens the alert list, follows the firing alert,
acknowledges it with a comment and then resolves it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.alerting import services
from apps.alerting.models import Alert
from tests.alerting.conftest import fail_job, job_rule
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_the_owner_acknowledges_and_resolves_an_alert_in_the_browser(
    browser, screenshot, live_server, endpoint, people
):
    rule = job_rule(endpoint, people["owner_user"])
    fail_job(endpoint)
    services.evaluate(rule=rule, endpoint=endpoint)
    alert = Alert.objects.get()
    page = sign_in(browser, live_server, "endpoint-owner", PASSWORD)
    page.goto(f"{live_server.url}/alerts/")
    expect(page.get_by_test_id("alert-row")).to_have_count(1)
    page.get_by_role("link", name="Failed jobs").click()
    expect(page.get_by_test_id("alert-state")).to_have_text("Firing")
    page.fill("#alert-comment", "Looking at the deploy logs")
    page.get_by_test_id("acknowledge-button").click()
    expect(page.get_by_test_id("alert-state")).to_have_text("Acknowledged")
    expect(page.get_by_test_id("acknowledged")).to_contain_text("Looking at the deploy logs")
    page.fill("#alert-comment", "Bad credentials, fixed")
    page.get_by_test_id("resolve-button").click()
    expect(page.get_by_test_id("alert-state")).to_have_text("Resolved")
    screenshot(page, "alerting-resolved")
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.resolved_by == people["owner_user"]
    page.context.close()
