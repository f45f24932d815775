"""Every transition of a deployment request: allowed ones move it (audited), the others are
refused with a reason and leave the request unchanged."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.deployments import services
from apps.deployments.models import DeploymentRequest
from apps.deployments.services import ALLOWED_TRANSITIONS, TRANSITIONS, TransitionRefused
from apps.jobs.models import Job
from tests.deployments.conftest import make_environment, make_request, make_version, pass_checks

pytestmark = pytest.mark.django_db
STATES = list(DeploymentRequest.State.values)
CASES = [(action, state) for action in TRANSITIONS for state in STATES]


@pytest.fixture
def request_in(users, artifact_root):
    version = make_version(users["engineer"])
    environment = make_environment(deployer_team=None)

    def build(state):
        return make_request(users["engineer"], version, environment, state=state)

    return build


@pytest.mark.parametrize(("action", "state"), CASES, ids=[f"{a}-from-{s}" for a, s in CASES])
def test_each_transition_is_allowed_only_from_its_states(request_in, action, state):
    request = request_in(state)
    sources, target, _ = TRANSITIONS[action]
    events_before = AuditEvent.objects.filter(object_type="deployments.deploymentrequest").count()
    with transaction.atomic():
        locked = services._locked(request)
        if state in sources:
            services._transition(locked, action, by=None, reason="test")
        else:
            with pytest.raises(TransitionRefused) as refused:
                services._transition(locked, action, by=None, reason="test")
            assert f"it is {DeploymentRequest.State(state).label.lower()}" in refused.value.reason
    request.refresh_from_db()
    events = AuditEvent.objects.filter(object_type="deployments.deploymentrequest").order_by("sequence")
    if state in sources:
        assert request.state == target
        event = events.last()
        assert event.before["state"] == state and event.after["state"] == target
    else:
        assert request.state == state and events.count() == events_before


def test_the_transition_table_is_the_documented_state_machine():
    S = DeploymentRequest.State
    assert {
        (S.DRAFT, S.PENDING),
        (S.DRAFT, S.WITHDRAWN),
        (S.PENDING, S.WITHDRAWN),
        (S.APPROVED, S.WITHDRAWN),
        (S.PENDING, S.APPROVED),
        (S.PENDING, S.REJECTED),
        (S.PENDING, S.EXPIRED),
        (S.APPROVED, S.DEPLOYING),
        (S.DEPLOYING, S.LIVE),
        (S.DEPLOYING, S.FAILED),
        (S.LIVE, S.ROLLED_BACK),
        (S.LIVE, S.RETIRED),
        (S.RETIRED, S.LIVE),
    } == ALLOWED_TRANSITIONS


def test_submitting_a_draft_makes_it_pending_with_an_expiry_and_a_checks_job(users, request_in):
    request = services.submit(request=request_in(None), by=users["engineer"])
    assert request.state == "pending" and request.expires_at > request.submitted_at
    assert request.checks_job.kind == services.CHECKS_JOB and request.checks_job.status == Job.Status.QUEUED


def test_submitting_twice_is_refused_with_the_reason(users, request_in):
    request = services.submit(request=request_in(None), by=users["engineer"])
    with pytest.raises(TransitionRefused, match="Cannot submit .* it is pending approval; only draft"):
        services.submit(request=request, by=users["engineer"])


def test_only_the_requester_submits_or_withdraws(users, request_in):
    request = request_in(None)
    with pytest.raises(PermissionDenied):
        services.submit(request=request, by=users["approver"])
    with pytest.raises(PermissionDenied):
        services.withdraw(request=request, by=users["approver"])


def test_withdrawing_a_pending_request(users, request_in):
    request = services.withdraw(request=request_in("pending"), by=users["engineer"], reason="Wrong version")
    assert request.state == "withdrawn" and request.state_reason == "Wrong version"


def test_approving_a_request_that_is_not_pending_is_refused(users, request_in):
    with pytest.raises(TransitionRefused, match="only pending requests"):
        services.approve(request=request_in("approved"), by=users["approver"], comment="ok")


def test_deploying_a_pending_request_is_refused(users, request_in):
    with pytest.raises(TransitionRefused, match="Cannot deploy"):
        services.start_deploy(request=request_in("pending"), by=users["engineer"])


def test_deploying_needs_passing_checks(users, request_in):
    with pytest.raises(TransitionRefused, match="checks not passed"):
        services.start_deploy(request=request_in("approved"), by=users["engineer"])


def test_deploying_an_approved_request_enqueues_one_deploy_job(users, request_in):
    request = request_in("approved")
    pass_checks(request)
    request = services.start_deploy(request=request, by=users["engineer"])
    assert request.state == "deploying" and request.deployed_by == users["engineer"]
    assert Job.objects.filter(kind=services.DEPLOY_JOB).count() == 1


def test_deploying_outside_the_change_window_is_refused(users, artifact_root):
    environment = make_environment(change_window={"days": [0], "start": "00:00", "end": "00:01"})
    request = make_request(users["engineer"], make_version(users["engineer"]), environment, state="approved")
    pass_checks(request)
    with (
        mock.patch("apps.deployments.services.policy.in_change_window", return_value=False),
        pytest.raises(TransitionRefused, match="outside the change window"),
    ):
        services.start_deploy(request=request, by=users["engineer"])


def test_marking_live_a_request_that_is_not_deploying_is_refused(request_in):
    with pytest.raises(TransitionRefused, match="Cannot put live"):
        services.mark_live(request=request_in("approved"))


def test_a_failed_deploy_leaves_the_request_failed_with_the_reason(request_in):
    request = services.mark_failed(request=request_in("deploying"), reason="MLmodel missing")
    assert request.state == "failed" and "MLmodel missing" in request.state_reason
