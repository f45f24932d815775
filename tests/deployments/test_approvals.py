"""Approving and rejecting: rules and counts, four-eyes, comments, step-up, notifications,
the inbox, and what happens when the last approval arrives."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from apps.accounts.models import Notification
from apps.accounts.roles import APPROVER
from apps.deployments import selectors, services
from apps.deployments.models import Approval
from apps.deployments.services import TransitionRefused
from apps.jobs.models import Job
from tests.conftest import PASSWORD
from tests.deployments.conftest import make_environment, make_request, make_version, pass_checks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def production(people):
    return make_environment(
        "production",
        rules=(("role", APPROVER, 1), ("team", people["risk_team"], 1)),
        requires_step_up=True,
        deployer_team=people["ops_team"],
    )


@pytest.fixture
def staging(people):
    return make_environment("staging", rules=(("role", APPROVER, 1),))


@pytest.fixture
def version(people, artifact_root):
    return make_version(people["engineer"])


def submitted(people, version, environment, **kwargs):
    request = make_request(people["engineer"], version, environment, **kwargs)
    return services.submit(request=request, by=people["engineer"])


def test_staging_one_approval_with_passing_checks_approves_and_starts_the_deploy(people, version, staging):
    request = submitted(people, version, staging)
    pass_checks(request)
    services.approve(request=request, by=people["approver"], comment="Metrics look right.")
    request.refresh_from_db()
    # No deployer team: the requester is the deployer, so the deploy starts on approval.
    assert request.state == "deploying" and request.deployed_by == people["engineer"]
    assert request.deploy_job.kind == services.DEPLOY_JOB


def test_approval_before_the_checks_finish_waits_for_them(people, version, staging):
    request = submitted(people, version, staging)
    services.approve(request=request, by=people["approver"], comment="ok")
    request.refresh_from_db()
    assert request.state == "pending" and "checks" in request.state_reason
    pass_checks(request)
    request.refresh_from_db()
    assert request.state == "deploying"


def test_failing_checks_keep_the_request_pending(people, version, staging):
    from apps.deployments import policy

    request = submitted(people, version, staging)
    services.record_checks(request=request, outcomes=[policy.CheckOutcome("version_ready", "fail", {})])
    services.approve(request=request, by=people["approver"], comment="ok")
    request.refresh_from_db()
    assert request.state == "pending" and "version_ready" in request.state_reason


def test_production_needs_the_role_and_the_team(people, version, production):
    request = submitted(people, version, production)
    pass_checks(request)
    services.approve(request=request, by=people["approver"], comment="Role ok.", password=PASSWORD)
    request.refresh_from_db()
    assert request.state == "pending"
    services.approve(request=request, by=people["validator"], comment="Validated.", password=PASSWORD)
    request.refresh_from_db()
    # A deployer team is named: approved, waiting for them to push it out.
    assert request.state == "approved" and request.deploy_job is None
    rules = dict(Approval.objects.filter(request=request).values_list("approver__username", "rule__role"))
    assert rules == {"approver": APPROVER, "validator": ""}


def test_a_person_in_both_rules_counts_once(people, version, production):
    request = submitted(people, version, production)
    pass_checks(request)
    services.approve(request=request, by=people["approver2"], comment="ok", password=PASSWORD)  # role + team
    request.refresh_from_db()
    assert request.state == "pending"
    services.approve(request=request, by=people["approver"], comment="ok", password=PASSWORD)  # role only
    request.refresh_from_db()
    assert request.state == "approved"  # approver2 moved to the team rule


def test_an_approval_that_would_not_count_is_refused(people, version, production):
    request = submitted(people, version, production)
    services.approve(request=request, by=people["approver"], comment="ok", password=PASSWORD)
    third = people["engineer2"]
    third.groups.add(people["approver"].groups.get(name=APPROVER))
    with pytest.raises(TransitionRefused, match="would not count"):
        services.approve(request=request, by=third, comment="ok", password=PASSWORD)


def test_requester_cannot_approve_own_request(people, version, staging):
    people["engineer"].groups.add(people["approver"].groups.get(name=APPROVER))
    request = submitted(people, version, staging)
    with pytest.raises(PermissionDenied, match="four-eyes"):
        services.approve(request=request, by=people["engineer"], comment="mine")


def test_someone_outside_the_rules_cannot_approve(people, version, staging):
    request = submitted(people, version, staging)
    with pytest.raises(PermissionDenied, match="not in any team or role"):
        services.approve(request=request, by=people["scientist"], comment="ok")


def test_a_comment_is_mandatory(people, version, staging):
    request = submitted(people, version, staging)
    with pytest.raises(ValidationError):
        services.approve(request=request, by=people["approver"], comment="   ")
    with pytest.raises(ValidationError):
        services.reject(request=request, by=people["approver"], comment="")


def test_production_asks_for_the_password_again(people, version, production):
    request = submitted(people, version, production)
    with pytest.raises(PermissionDenied, match="re-enter"):
        services.approve(request=request, by=people["approver"], comment="ok")
    with pytest.raises(PermissionDenied, match="not correct"):
        services.approve(request=request, by=people["approver"], comment="ok", password="wrong-password")
    approval = services.approve(request=request, by=people["approver"], comment="ok", password=PASSWORD)
    assert approval.step_up is True


def test_one_rejection_ends_the_request(people, version, production):
    request = submitted(people, version, production)
    services.approve(request=request, by=people["approver"], comment="ok", password=PASSWORD)
    services.reject(request=request, by=people["validator"], comment="Bias in the east.", password=PASSWORD)
    request.refresh_from_db()
    assert request.state == "rejected" and "Bias in the east." in request.state_reason


def test_deciding_twice_is_refused(people, version, production):
    request = submitted(people, version, production)
    services.approve(request=request, by=people["approver"], comment="ok", password=PASSWORD)
    with pytest.raises(PermissionDenied, match="already decided"):
        services.reject(request=request, by=people["approver"], comment="changed my mind", password=PASSWORD)


def test_submitting_notifies_the_approvers_and_the_requester(people, version, production):
    mail.outbox.clear()
    submitted(people, version, production)
    notified = set(Notification.objects.values_list("recipient__username", flat=True))
    assert notified == {"approver", "approver2", "validator", "engineer"}
    assert {message.to[0] for message in mail.outbox} == {f"{name}@example.test" for name in notified}


def test_an_approval_notifies_the_requester_and_the_approvers_still_needed(people, version, production):
    request = submitted(people, version, production)
    Notification.objects.all().delete()
    mail.outbox.clear()
    services.approve(request=request, by=people["approver"], comment="Looks fine.", password=PASSWORD)
    notified = set(Notification.objects.values_list("recipient__username", flat=True))
    # approver2 and validator are in the Model Risk team, whose rule is still open.
    assert notified == {"engineer", "approver2", "validator"}
    assert any("Looks fine." in message.body for message in mail.outbox if message.to == ["engineer@example.test"])


def test_rejection_notifies_the_requester(people, version, staging):
    request = submitted(people, version, staging)
    Notification.objects.all().delete()
    services.reject(request=request, by=people["approver"], comment="Not yet.")
    note = Notification.objects.get()
    assert note.recipient == people["engineer"] and note.verb == "deployment.rejected"
    assert note.url == f"/deployments/requests/{request.pk}/"


def test_the_inbox_lists_what_each_approver_may_still_approve(people, version, production, staging):
    prod_request = submitted(people, version, production)
    staging_request = submitted(people, version, staging, endpoint="churn-staging")
    assert set(selectors.inbox(people["approver"])) == {prod_request, staging_request}
    assert set(selectors.inbox(people["validator"])) == {prod_request}
    assert list(selectors.inbox(people["engineer"])) == []  # the requester
    assert list(selectors.inbox(people["scientist"])) == []
    services.approve(request=prod_request, by=people["approver"], comment="ok", password=PASSWORD)
    # The role rule is met; approver2 still may approve for the team rule, approver no longer.
    assert set(selectors.inbox(people["approver"])) == {staging_request}
    assert set(selectors.inbox(people["approver2"])) == {prod_request, staging_request}


def test_the_inbox_is_one_query(people, version, production, django_assert_num_queries):
    submitted(people, version, production)
    with django_assert_num_queries(1):
        list(selectors.inbox(people["approver"]))


def test_the_deployer_team_pushes_an_approved_request_out(people, version, production):
    request = submitted(people, version, production)
    pass_checks(request)
    services.approve(request=request, by=people["approver"], comment="ok", password=PASSWORD)
    services.approve(request=request, by=people["validator"], comment="ok", password=PASSWORD)
    with pytest.raises(PermissionDenied):
        services.start_deploy(request=request, by=people["engineer"])
    request = services.start_deploy(request=request, by=people["ops"])
    assert request.state == "deploying" and request.deployed_by == people["ops"]
    assert Job.objects.filter(kind=services.DEPLOY_JOB).count() == 1
