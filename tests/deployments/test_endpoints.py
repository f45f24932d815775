"""Going live, canaries, rollback, retire, expiry and the permission matrix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.accounts.models import Notification
from apps.deployments import permissions, services
from apps.deployments.models import DeploymentRequest, Endpoint
from apps.deployments.services import TransitionRefused
from tests.deployments.conftest import make_environment, make_request, make_version, pass_checks

pytestmark = pytest.mark.django_db


@pytest.fixture
def staging(db):
    return make_environment("staging")


def go_live(user, version, environment, **kwargs):
    request = make_request(user, version, environment, state="approved", **kwargs)
    pass_checks(request)
    request = services.start_deploy(request=request, by=user)
    return request, services.mark_live(request=request, job=request.deploy_job)


@pytest.fixture
def two_versions(users, artifact_root):
    first = make_version(users["engineer"])
    second = make_version(users["engineer"], model=first.registered_model)
    return first, second


def test_going_live_creates_the_endpoint_and_its_first_revision(users, two_versions, staging):
    first, _ = two_versions
    request, endpoint = go_live(users["engineer"], first, staging)
    request.refresh_from_db()
    assert request.state == "live" and request.deployed_at is not None
    assert (
        endpoint.current_version == first and endpoint.owner == users["engineer"] and endpoint.live_request == request
    )
    revision = endpoint.revisions.get()
    assert (revision.model_version, revision.role, revision.traffic_percent, revision.ended_at) == (
        first,
        "primary",
        100,
        None,
    )


def test_marking_live_twice_for_the_same_job_changes_nothing(users, two_versions, staging):
    request, endpoint = go_live(users["engineer"], two_versions[0], staging)
    request.refresh_from_db()
    again = services.mark_live(request=request, job=request.deploy_job)
    assert again.pk == endpoint.pk and endpoint.revisions.count() == 1


def test_replacing_keeps_the_previous_version_and_retires_the_old_request(users, two_versions, staging):
    first, second = two_versions
    old, _ = go_live(users["engineer"], first, staging)
    new, endpoint = go_live(users["engineer"], second, staging)
    old.refresh_from_db()
    assert (endpoint.current_version, endpoint.previous_version) == (second, first)
    assert old.state == "retired" and f"#{new.pk}" in old.state_reason
    assert [r.ended_by_action for r in endpoint.revisions.order_by("started_at", "id")] == ["replaced", ""]


def test_rollback_returns_to_the_previous_live_version(users, two_versions, staging):
    first, second = two_versions
    old, _ = go_live(users["engineer"], first, staging)
    new, endpoint = go_live(users["engineer"], second, staging)
    Notification.objects.all().delete()
    endpoint = services.rollback_endpoint(endpoint=endpoint, by=users["ops"], reason="Latency doubled.")
    new.refresh_from_db()
    old.refresh_from_db()
    assert endpoint.current_version == first and endpoint.previous_version is None
    assert new.state == "rolled_back" and old.state == "live" and endpoint.live_request == old
    latest = endpoint.revisions.order_by("-started_at", "-id").first()
    assert latest.model_version == first and latest.request == old and latest.ended_at is None
    assert Notification.objects.filter(recipient=users["engineer"], verb="deployment.rolled_back").exists()


def test_rollback_without_a_previous_version_is_refused(users, two_versions, staging):
    _, endpoint = go_live(users["engineer"], two_versions[0], staging)
    with pytest.raises(TransitionRefused, match="no previous live version"):
        services.rollback_endpoint(endpoint=endpoint, by=users["ops"])


def test_a_canary_takes_its_share_and_rolling_it_back_returns_all_traffic(users, two_versions, staging):
    first, second = two_versions
    primary, _ = go_live(users["engineer"], first, staging)
    canary, endpoint = go_live(users["engineer"], second, staging, rollout="canary", canary_percent=10)
    assert (endpoint.current_version, endpoint.canary_version, endpoint.canary_percent) == (first, second, 10)
    shares = {(r.role, r.traffic_percent) for r in endpoint.revisions.filter(ended_at=None)}
    assert shares == {("primary", 90), ("canary", 10)}
    endpoint = services.rollback_endpoint(endpoint=endpoint, by=users["engineer"])
    canary.refresh_from_db()
    primary.refresh_from_db()
    assert endpoint.canary_version is None and endpoint.canary_percent == 0 and endpoint.current_version == first
    assert canary.state == "rolled_back" and primary.state == "live"


def test_retiring_ends_every_revision_and_retires_the_requests(users, two_versions, staging):
    request, endpoint = go_live(users["engineer"], two_versions[0], staging)
    endpoint = services.retire_endpoint(endpoint=endpoint, by=users["engineer"], reason="Replaced by rules.")
    request.refresh_from_db()
    assert endpoint.state == "retired" and request.state == "retired"
    assert not endpoint.revisions.filter(ended_at=None).exists()
    with pytest.raises(TransitionRefused, match="already retired"):
        services.retire_endpoint(endpoint=endpoint, by=users["engineer"])


def test_someone_else_cannot_roll_back_or_retire(users, two_versions, staging):
    _, endpoint = go_live(users["engineer"], two_versions[0], staging)
    for action in (services.rollback_endpoint, services.retire_endpoint):
        with pytest.raises(PermissionDenied):
            action(endpoint=endpoint, by=users["scientist"])


def test_granting_invoke_lets_a_user_call_the_endpoint(users, two_versions, staging):
    _, endpoint = go_live(users["engineer"], two_versions[0], staging)
    assert not permissions.can_invoke(users["owner"], endpoint)
    services.grant_invoke(endpoint=endpoint, by=users["engineer"], user=users["owner"])
    endpoint = Endpoint.objects.get(pk=endpoint.pk)
    assert permissions.can_invoke(users["owner"], endpoint)
    with pytest.raises(PermissionDenied):
        services.grant_invoke(endpoint=endpoint, by=users["owner"], user=users["scientist"])


# --- Expiry --------------------------------------------------------------------------------------


def test_pending_requests_past_their_expiry_expire_and_the_requester_is_told(users, artifact_root, staging):
    version = make_version(users["engineer"])
    due = services.submit(request=make_request(users["engineer"], version, staging), by=users["engineer"])
    fresh = services.submit(
        request=make_request(users["engineer"], version, staging, endpoint="b"), by=users["engineer"]
    )
    DeploymentRequest.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert services.expire_pending() == 1
    due.refresh_from_db()
    fresh.refresh_from_db()
    assert due.state == "expired" and fresh.state == "pending"
    assert Notification.objects.filter(recipient=users["engineer"], verb="deployment.expired").count() == 1
    assert services.expire_pending() == 0


def test_expiry_runs_under_celery_beat():
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "deployments.expire_pending_requests" in entries


# --- Permission matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "may"),
    [("engineer", True), ("scientist", False), ("approver", False), ("ops", False), ("admin", True), ("nobody", False)],
)
def test_who_may_request_a_deployment(users, artifact_root, who, may):
    version = make_version(users["engineer"], team=None)
    assert permissions.can_request(users[who], version) is may


def test_a_request_grant_on_the_model_lets_an_outsider_request(users, artifact_root):
    from guardian.shortcuts import assign_perm

    version = make_version(users["engineer"])
    assign_perm("registry.request_deployment_registeredmodel", users["scientist"], version.registered_model)
    assert permissions.can_request(users["scientist"], version)


def test_requesting_without_permission_is_refused(users, artifact_root, staging):
    version = make_version(users["engineer"])
    with pytest.raises(PermissionDenied):
        make_request(users["scientist"], version, staging)


@pytest.mark.parametrize(
    ("who", "deployer_team", "may"),
    [
        ("engineer", False, True),  # the requester, no deployer team
        ("engineer", True, False),
        ("ops", True, True),  # in the deployer team
        ("ops", False, False),
        ("admin", True, True),
        ("approver", False, False),
    ],
)
def test_who_may_deploy(people, artifact_root, who, deployer_team, may):
    environment = make_environment("prod", deployer_team=people["ops_team"] if deployer_team else None)
    request = make_request(people["engineer"], make_version(people["engineer"]), environment)
    assert permissions.can_deploy(people[who], request) is may


@pytest.mark.parametrize(
    ("who", "may"),
    [("approver", True), ("approver2", True), ("validator", False), ("engineer", False), ("scientist", False)],
)
def test_who_is_an_approver_of_a_role_rule(people, who, may):
    assert permissions.is_environment_approver(people[who], make_environment("staging")) is may


def test_only_admins_edit_policies_and_the_change_is_audited(users, staging):
    from apps.audit.models import AuditEvent

    with pytest.raises(PermissionDenied):
        services.update_environment_policy(environment=staging, by=users["approver"], min_card_completeness=90)
    services.update_environment_policy(
        environment=staging,
        by=users["admin"],
        min_card_completeness=90,
        rules=[{"role": "Approvers", "required_approvals": 2}],
    )
    event = AuditEvent.objects.filter(action="deployment.environment.policy_changed").get()
    assert event.before["min_card_completeness"] == 0 and event.after["min_card_completeness"] == 90
    assert event.after["approval_rules"] == [{"team": None, "role": "Approvers", "required_approvals": 2}]


# --- Visibility --------------------------------------------------------------------------------


def test_requests_of_a_private_model_are_hidden_from_outsiders_but_not_from_approvers(users, artifact_root, staging):
    from apps.deployments import selectors

    version = make_version(users["engineer"], visibility="private")
    request = make_request(users["engineer"], version, staging)
    assert list(selectors.visible_requests(users["engineer"])) == [request]
    assert list(selectors.visible_requests(users["approver"])) == [request]  # approver of staging
    assert list(selectors.visible_requests(users["ops"])) == [request]
    assert list(selectors.visible_requests(users["scientist"])) == []
    assert selectors.request_for(users["scientist"], request.pk) is None


def test_endpoints_are_visible_to_those_who_see_the_model_or_may_call_it(users, artifact_root, staging):
    from apps.deployments import selectors

    version = make_version(users["engineer"], visibility="private")
    _, endpoint = go_live(users["engineer"], version, staging)
    assert selectors.endpoint_for(users["scientist"], endpoint.name) is None
    services.grant_invoke(endpoint=endpoint, by=users["engineer"], user=users["scientist"])
    assert selectors.endpoint_for(users["scientist"], endpoint.name) == endpoint
    assert selectors.invokable_endpoint(users["scientist"], endpoint.name) == endpoint
    assert selectors.invokable_endpoint(users["nobody"], endpoint.name) is None
