"""Journey (b): an ML engineer asks in the browser to deploy a model version to production; two
approvers sign it off in their own browsers, each re-entering their password (production asks
for step-up); the checks and the deploy run as jobs on a real Celery worker; the endpoint goes
live and answers a prediction for a caller whose token has the invoke permission."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from apps.accounts import services as accounts
from apps.accounts.roles import APPROVER, ENGINEER
from apps.deployments import services
from apps.deployments.models import DeploymentRequest, Endpoint
from apps.registry.models import RegisteredModel
from tests.conftest import PASSWORD, make_user, wait_for
from tests.deployments.conftest import make_environment, make_version, skops_model_files
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.worker]

ENDPOINT = "churn-scoring"
ROWS = {
    "dataframe_split": {
        "columns": ["a", "b", "n", "region"],
        "data": [[0.1, 2.0, 3, "north"], [0.9, 0.5, 7, "west"]],
    }
}


@pytest.fixture
def serving_cache(settings, tmp_path):
    settings.SERVING_CACHE_DIR = str(tmp_path / "serving-cache")


def post(url: str, secret: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the live test server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def state_of(pk: int, *states: str):
    return lambda: DeploymentRequest.objects.filter(pk=pk, state__in=states).first()


def approve_in_browser(browser, live_server, screenshot, username: str, shot: str, comment: str) -> None:
    page = sign_in(browser, live_server, username, PASSWORD)
    page.goto(f"{live_server.url}/deployments/inbox/")
    page.click('[data-testid="inbox-row"] >> text=churn-classifier v1')
    page.wait_for_selector('[data-testid="decision-form"]')
    expect(page.locator('[data-testid="diff"]')).to_contain_text("New endpoint")
    page.fill("#id_comment", comment)
    page.fill("#id_password", PASSWORD)
    page.click('[data-testid="decision-form"] button[value="approve"]')
    expect(page.locator(".alert-success")).to_contain_text("Approved.")
    screenshot(page, shot)
    page.context.close()


def test_engineer_requests_two_approvers_sign_off_and_the_endpoint_answers(
    browser, live_server, screenshot, artifact_root, serving_cache, celery_worker
):
    erin = make_user("erin", ENGINEER)
    make_user("alice", APPROVER)
    make_user("bob", APPROVER)
    consumer = make_user("crm-service")
    make_environment(
        "production",
        rules=(("role", APPROVER, 2),),
        requires_step_up=True,
        allow_pickle=False,
        metric_thresholds=[{"metric": "roc_auc", "op": ">=", "value": 0.7}],
    )
    model = RegisteredModel.objects.create(
        name="churn-classifier", owner=erin, visibility="organisation", creation_timestamp=0, last_updated_timestamp=0
    )
    make_version(erin, model=model, metrics={"roc_auc": 0.84}, files=skops_model_files())

    # b1-b2: the engineer fills the request in and sees the checks pass on the worker.
    page = sign_in(browser, live_server, "erin", PASSWORD)
    page.goto(f"{live_server.url}/deployments/requests/new/?model=churn-classifier&version=1")
    page.select_option("#id_environment", label="production")
    page.fill("#id_endpoint_name", ENDPOINT)
    page.fill("#id_justification", "Recall on the March hold-out is up 6 points.")
    page.fill("#id_risk_note", "Scores only order the outreach queue; a human calls.")
    screenshot(page, "b1-request-form")
    page.click('[data-testid="request-form"] button[type=submit]')
    page.wait_for_selector('[data-testid="checks"]')
    pk = int(page.url.rstrip("/").rsplit("/", 1)[-1])
    request = DeploymentRequest.objects.get(pk=pk)
    assert request.state == "pending" and request.requester == erin
    wait_for(lambda: request.checks.filter(status="pass").count() == 2, timeout=60)
    page.reload()
    expect(page.locator('[data-testid="check-row"] .text-bg-success')).to_have_count(2)
    expect(page.locator('[data-testid="diff"]')).to_contain_text("New endpoint")
    screenshot(page, "b2-request-pending")

    # b3-b4: two approvers, each in a browser of their own, with their password again.
    approve_in_browser(browser, live_server, screenshot, "alice", "b3-first-approval", "Metrics and card look right.")
    assert DeploymentRequest.objects.get(pk=pk).state == "pending"
    approve_in_browser(browser, live_server, screenshot, "bob", "b4-second-approval", "Risk note accepted.")

    # The second approval meets the policy: the deploy job runs on the worker and goes live.
    live = wait_for(state_of(pk, "live", "failed"), timeout=90)
    assert live.state == "live", live.state_reason
    endpoint = Endpoint.objects.get(name=ENDPOINT)
    assert endpoint.state == "live" and endpoint.current_version.registered_model == model
    assert set(live.approvals.values_list("approver__username", flat=True)) == {"alice", "bob"}
    assert all(live.approvals.values_list("step_up", flat=True))

    page.reload()
    expect(page.locator('[data-testid="timeline-live"]')).to_be_visible()
    expect(page.locator('[data-testid="timeline-approve"]')).to_have_count(2)
    screenshot(page, "b5-request-live")
    page.goto(f"{live_server.url}/deployments/endpoints/{ENDPOINT}/")
    expect(page.locator("body")).to_contain_text("churn-classifier")
    screenshot(page, "b6-endpoint-live")

    # A caller's token answers 403 until it is granted invoke, then scores rows.
    _, secret = accounts.create_token(user=consumer, name="crm")
    url = f"{live_server.url}/serve/{ENDPOINT}/invocations"
    status, _ = post(url, secret, ROWS)
    assert status == 403
    services.grant_invoke(endpoint=endpoint, by=erin, user=consumer)
    status, body = post(url, secret, ROWS)
    assert status == 200, body
    assert len(body["predictions"]) == 2 and set(body["predictions"]) <= {0, 1}
