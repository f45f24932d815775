"""The deployment pages: who sees what, approving and rejecting from the request page (errors
inline, nothing changed), the inbox, endpoints, environments, and what the list costs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.roles import APPROVER
from apps.deployments import services
from apps.deployments.models import Approval, DeploymentRequest, Environment
from tests.conftest import PASSWORD
from tests.deployments.conftest import make_environment, make_request, make_version, pass_checks

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(people):
    return make_environment(
        "production",
        rules=(("role", APPROVER, 1),),
        requires_step_up=True,
        deployer_team=people["ops_team"],
    )


@pytest.fixture
def staging(people):
    return make_environment("staging")


@pytest.fixture
def version(people, artifact_root):
    return make_version(people["engineer"])


@pytest.fixture
def pending(people, version, production):
    request = make_request(people["engineer"], version, production)
    request = services.submit(request=request, by=people["engineer"])
    pass_checks(request)
    return request


def request_url(request, name="deployments:request"):
    return reverse(name, args=[request.pk])


def decide(client, request, **data):
    return client.post(request_url(request, "deployments:request_decide"), data)


def go_live(user, version, environment, endpoint="churn"):
    request = make_request(user, version, environment, endpoint=endpoint, state="approved")
    pass_checks(request)
    request = services.start_deploy(request=request, by=user)
    services.mark_live(request=request, job=request.deploy_job)
    return request


# --- Who sees what --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "deployments:request_list",
        "deployments:inbox",
        "deployments:request_new",
        "deployments:endpoint_list",
        "deployments:environment_list",
    ],
)
def test_anonymous_visitors_are_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_anonymous_visitors_are_sent_to_login_from_a_request(client, pending):
    response = client.get(request_url(pending))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("role", ["engineer", "approver", "ops", "admin"])
def test_the_request_page_renders_for_those_who_may_see_it(client, people, pending, role):
    client.force_login(people[role])
    response = client.get(request_url(pending))
    assert response.status_code == 200
    body = response.content.decode()
    assert pending.model_version.registered_model.name in body
    assert reverse("registry:version", args=[pending.model_version.registered_model.name, 1]) in body
    assert "Better recall on the hold-out." in body and "prioritise outreach" in body


def test_a_stranger_gets_404_on_a_request_they_cannot_see(client, people, artifact_root, production):
    hidden = make_version(people["engineer"], visibility="private")
    request = make_request(people["engineer"], hidden, production)
    client.force_login(people["scientist"])
    assert client.get(request_url(request)).status_code == 404
    assert client.post(request_url(request, "deployments:request_withdraw")).status_code == 404
    assert request.pk not in [r.pk for r in client.get(reverse("deployments:request_list")).context["page"].object_list]


def test_the_request_page_shows_checks_rules_and_the_password_field_for_step_up(client, people, pending):
    client.force_login(people["approver"])
    response = client.get(request_url(pending))
    body = response.content.decode()
    assert "version_ready" in body and 'data-testid="decision-form"' in body
    assert 'name="password"' in body
    assert response.context["rule_rows"][0]["required"] == 1


def test_no_password_field_where_step_up_is_not_required(client, people, version, staging):
    request = services.submit(request=make_request(people["engineer"], version, staging), by=people["engineer"])
    client.force_login(people["approver"])
    body = client.get(request_url(request)).content.decode()
    assert 'data-testid="decision-form"' in body and 'name="password"' not in body


# --- Deciding --------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_inline_and_changes_nothing(client, people, pending):
    client.force_login(people["approver"])
    response = decide(client, pending, decision="approve", comment="Looks good.", password="wrong-password")
    assert response.status_code == 403
    assert "password is not correct" in response.content.decode()
    pending.refresh_from_db()
    assert pending.state == "pending" and not Approval.objects.filter(request=pending).exists()


def test_a_missing_password_is_refused_inline(client, people, pending):
    client.force_login(people["approver"])
    response = decide(client, pending, decision="approve", comment="Looks good.")
    assert response.status_code == 403 and "re-enter their password" in response.content.decode()
    assert not Approval.objects.filter(request=pending).exists()


def test_the_right_password_approves(client, people, pending):
    client.force_login(people["approver"])
    response = decide(client, pending, decision="approve", comment="Looks good.", password=PASSWORD)
    assert response.status_code == 302 and response.url == request_url(pending)
    pending.refresh_from_db()
    # Production names a deployer team: approved, waiting for them.
    assert pending.state == "approved"
    approval = Approval.objects.get(request=pending)
    assert (approval.approver, approval.decision, approval.step_up) == (people["approver"], "approve", True)
    body = client.get(request_url(pending)).content.decode()
    assert "Looks good." in body


def test_rejecting_needs_a_comment(client, people, pending):
    client.force_login(people["approver"])
    response = decide(client, pending, decision="reject", comment="", password=PASSWORD)
    assert response.status_code == 400
    assert "A comment is required" in response.content.decode()
    pending.refresh_from_db()
    assert pending.state == "pending" and not Approval.objects.exists()


def test_rejecting_with_a_comment_rejects(client, people, pending):
    client.force_login(people["approver"])
    response = decide(client, pending, decision="reject", comment="Not calibrated.", password=PASSWORD)
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.state == "rejected"


def test_requester_cannot_approve_own_request(client, people, pending):
    people["engineer"].groups.add(people["approver"].groups.get(name=APPROVER))
    client.force_login(people["engineer"])
    page = client.get(request_url(pending)).content.decode()
    assert "four-eyes" in page and 'data-testid="decision-form"' not in page
    response = decide(client, pending, decision="approve", comment="Mine is fine.", password=PASSWORD)
    assert response.status_code == 403
    assert "someone else must approve it" in response.content.decode()
    pending.refresh_from_db()
    assert pending.state == "pending" and not Approval.objects.exists()


def test_the_requester_can_withdraw(client, people, pending):
    client.force_login(people["engineer"])
    assert 'data-testid="withdraw-button"' in client.get(request_url(pending)).content.decode()
    response = client.post(request_url(pending, "deployments:request_withdraw"), {"reason": "Not needed."})
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.state == "withdrawn"


def test_someone_else_may_not_withdraw(client, people, pending):
    client.force_login(people["approver"])
    assert client.post(request_url(pending, "deployments:request_withdraw")).status_code == 403
    pending.refresh_from_db()
    assert pending.state == "pending"


def test_a_deployer_sees_the_deploy_button_and_deploys(client, people, pending):
    DeploymentRequest.objects.filter(pk=pending.pk).update(state="approved")
    client.force_login(people["ops"])  # lead of the deployer team
    assert 'data-testid="deploy-button"' in client.get(request_url(pending)).content.decode()
    client.force_login(people["engineer"])
    assert 'data-testid="deploy-button"' not in client.get(request_url(pending)).content.decode()
    assert client.post(request_url(pending, "deployments:request_deploy")).status_code == 403
    client.force_login(people["ops"])
    assert client.post(request_url(pending, "deployments:request_deploy")).status_code == 302
    pending.refresh_from_db()
    assert pending.state == "deploying" and pending.deployed_by == people["ops"]


# --- Inbox -----------------------------------------------------------------------------------------


def test_the_inbox_shows_the_pending_request_to_an_eligible_approver(client, people, pending):
    client.force_login(people["approver"])
    response = client.get(reverse("deployments:inbox"))
    assert response.status_code == 200
    assert [r.pk for r in response.context["page"].object_list] == [pending.pk]
    assert request_url(pending) in response.content.decode()


def test_the_inbox_does_not_show_the_request_to_its_requester(client, people, pending):
    people["engineer"].groups.add(people["approver"].groups.get(name=APPROVER))
    client.force_login(people["engineer"])
    assert list(client.get(reverse("deployments:inbox")).context["page"].object_list) == []


# --- New request -----------------------------------------------------------------------------------


def test_the_new_request_form_creates_and_submits(client, people, version, staging):
    client.force_login(people["engineer"])
    assert client.get(reverse("deployments:request_new")).status_code == 200
    response = client.post(
        reverse("deployments:request_new"),
        {
            "model": version.registered_model.name,
            "version": version.version,
            "environment": "staging",
            "endpoint_name": "churn-scores",
            "justification": "Better recall.",
            "risk_note": "Low.",
            "rollout": "replace",
        },
    )
    created = DeploymentRequest.objects.get()
    assert response.status_code == 302 and response.url == request_url(created)
    assert (created.state, created.endpoint_name, created.requester) == ("pending", "churn-scores", people["engineer"])


def test_the_new_request_form_shows_service_errors_inline(client, people, version, staging):
    client.force_login(people["engineer"])
    response = client.post(
        reverse("deployments:request_new"),
        {
            "model": version.registered_model.name,
            "version": version.version,
            "environment": "staging",
            "endpoint_name": "Not A Slug",
            "justification": "Better recall.",
            "rollout": "canary",
            "canary_percent": 10,
        },
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert "endpoint_name" in form.errors and "rollout" in form.errors
    assert not DeploymentRequest.objects.exists()


def test_someone_who_may_not_request_is_refused_inline(client, people, version, staging):
    client.force_login(people["approver"])
    response = client.post(
        reverse("deployments:request_new"),
        {
            "model": version.registered_model.name,
            "version": version.version,
            "environment": "staging",
            "endpoint_name": "churn",
            "justification": "Because.",
            "rollout": "replace",
        },
    )
    assert response.status_code == 403 and "may not request" in response.content.decode()
    assert not DeploymentRequest.objects.exists()


# --- Endpoints -------------------------------------------------------------------------------------


def test_the_endpoints_page_shows_the_live_version(client, people, version, staging):
    go_live(people["engineer"], version, staging)
    client.force_login(people["ops"])
    response = client.get(reverse("deployments:endpoint_list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "churn" in body and f"{version.registered_model.name} v{version.version}" in body


def test_the_endpoint_page_shows_history_and_buttons_for_operators(client, people, version, staging):
    second = make_version(people["engineer"], model=version.registered_model)
    first_request = go_live(people["engineer"], version, staging)
    go_live(people["engineer"], second, staging)
    client.force_login(people["ops"])
    response = client.get(reverse("deployments:endpoint", args=["churn"]))
    body = response.content.decode()
    assert response.status_code == 200
    assert len(response.context["history"]) == 2
    assert request_url(first_request) in body
    assert 'data-testid="rollback-button"' in body and 'data-testid="retire-button"' in body
    assert "curl -X POST" in body and "/serve/churn/invocations" in body


def test_rolling_back_from_the_endpoint_page(client, people, version, staging):
    second = make_version(people["engineer"], model=version.registered_model)
    go_live(people["engineer"], version, staging)
    go_live(people["engineer"], second, staging)
    client.force_login(people["ops"])
    response = client.post(reverse("deployments:endpoint_rollback", args=["churn"]), {"reason": "Worse scores."})
    assert response.status_code == 302
    assert client.get(response.url).context["endpoint"].current_version == version


def test_a_viewer_without_rights_sees_no_buttons_and_may_not_retire(client, people, version, staging):
    go_live(people["engineer"], version, staging)
    client.force_login(people["scientist"])  # sees the organisation-wide model, operates nothing
    body = client.get(reverse("deployments:endpoint", args=["churn"])).content.decode()
    assert 'data-testid="retire-button"' not in body
    assert client.post(reverse("deployments:endpoint_retire", args=["churn"])).status_code == 403


def test_an_unknown_endpoint_is_404(client, people):
    client.force_login(people["admin"])
    assert client.get(reverse("deployments:endpoint", args=["nothing"])).status_code == 404


# --- Environments ----------------------------------------------------------------------------------


def test_environments_list_their_policies_and_only_admins_edit(client, people, production):
    client.force_login(people["engineer"])
    response = client.get(reverse("deployments:environment_list"))
    assert response.status_code == 200 and "production" in response.content.decode()
    assert 'data-testid="edit-policy"' not in response.content.decode()
    assert client.get(reverse("deployments:environment_edit", args=["production"])).status_code == 403
    client.force_login(people["admin"])
    assert 'data-testid="edit-policy"' in client.get(reverse("deployments:environment_list")).content.decode()
    assert client.get(reverse("deployments:environment_edit", args=["production"])).status_code == 200


def test_an_admin_changes_a_policy_through_the_form(client, people, production):
    client.force_login(people["admin"])
    response = client.post(
        reverse("deployments:environment_edit", args=["production"]),
        {
            "description": "Live traffic.",
            "display_order": 2,
            "min_card_completeness": 60,
            "metric_thresholds": '[{"metric": "roc_auc", "op": ">=", "value": 0.7}]',
            "change_window": "",
            "request_expiry_hours": 48,
            "requires_step_up": "on",
            "deployer_team": people["ops_team"].pk,
            "rules": "role: Approvers: 1\nteam: Model Risk: 1",
        },
    )
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    production = Environment.objects.get(pk=production.pk)
    assert production.min_card_completeness == 60 and production.request_expiry_hours == 48
    assert production.metric_thresholds == [{"metric": "roc_auc", "op": ">=", "value": 0.7}]
    assert production.approval_rules.count() == 2


def test_a_bad_policy_is_refused_inline(client, people, production):
    client.force_login(people["admin"])
    response = client.post(
        reverse("deployments:environment_edit", args=["production"]),
        {
            "display_order": 0,
            "min_card_completeness": 0,
            "metric_thresholds": '[{"metric": "roc_auc", "op": "~", "value": 0.7}]',
            "request_expiry_hours": 72,
            "rules": "role: Approvers: 1",
        },
    )
    assert response.status_code == 400 and "operator" in response.content.decode()
    assert Environment.objects.get(pk=production.pk).metric_thresholds == []


# --- Cost ------------------------------------------------------------------------------------------


def test_the_requests_list_costs_the_same_for_3_and_20_requests(client, people, version, staging):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("deployments:request_list"))
        assert response.status_code == 200
        return len(queries)

    for index in range(3):
        make_request(people["engineer"], version, staging, endpoint=f"e-{index}")
    client.force_login(people["approver"])
    few = count()
    for index in range(3, 20):
        make_request(people["engineer"], version, staging, endpoint=f"e-{index}")
    assert count() == few
