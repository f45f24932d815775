"""Every write to deployments. Each state change of a request or an endpoint is one function
here: it runs in a transaction, locks the row it changes (select_for_update) before reading
its state, refuses impossible transitions with `TransitionRefused` (the reason in words),
checks permission, records an audit event with the state before and after, and tells the
people concerned (in-app + e-mail, sent when the transaction commits).

    draft ─submit→ pending ─approve (all rules + all checks)→ approved ─start_deploy→ deploying
      │              ├─reject→ rejected          │                          ├─mark_live→ live
      │              ├─expire→ expired           │                          └─mark_failed→ failed
      └──────────────┴─withdraw→ withdrawn ←─────┘
    live ─rollback→ rolled_back      live ─retire / replaced→ retired ─restored by rollback→ live

When an environment names no deployer team, the requester is the deployer and the deploy starts
as soon as the request is fully approved (inside the change window), attributed to them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts import services as accounts
from apps.accounts.models import Team, User
from apps.accounts.roles import ALL_ROLES
from apps.audit import services as audit
from apps.core import request_context
from apps.deployments import permissions, policy, selectors
from apps.deployments.models import (
    Approval,
    ApprovalRule,
    CheckResult,
    DeploymentRequest,
    Endpoint,
    EndpointRevision,
    Environment,
)
from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.registry.models import ModelVersion

CHECKS_JOB = "deployments.checks"
DEPLOY_JOB = "deployments.deploy"
MAX_TEXT = 20_000
State = DeploymentRequest.State
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")


class TransitionRefused(ValidationError):
    """A state change that is not allowed from the current state (or not yet possible)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


# action: (states it may start from, state it leads to, what the action is called in a sentence)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "submit": ((State.DRAFT,), State.PENDING, "submit"),
    "withdraw": ((State.DRAFT, State.PENDING, State.APPROVED), State.WITHDRAWN, "withdraw"),
    "approve": ((State.PENDING,), State.APPROVED, "approve"),
    "reject": ((State.PENDING,), State.REJECTED, "reject"),
    "expire": ((State.PENDING,), State.EXPIRED, "expire"),
    "start_deploy": ((State.APPROVED,), State.DEPLOYING, "deploy"),
    "mark_live": ((State.DEPLOYING,), State.LIVE, "put live"),
    "mark_failed": ((State.DEPLOYING,), State.FAILED, "fail"),
    "rollback": ((State.LIVE,), State.ROLLED_BACK, "roll back"),
    "retire": ((State.LIVE,), State.RETIRED, "retire"),
    "restore": ((State.RETIRED,), State.LIVE, "restore"),
}
ALLOWED_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    (source, target) for sources, target, _ in TRANSITIONS.values() for source in sources
)

REQUEST_AUDIT_FIELDS = ("state", "state_reason", "decided_at", "deployed_at", "deployed_by", "expires_at")


def request_url(request: DeploymentRequest) -> str:
    return f"/deployments/requests/{request.pk}/"


def endpoint_url(endpoint: Endpoint) -> str:
    return f"/deployments/endpoints/{endpoint.name}/"


# --- Requests: create, submit, withdraw ---------------------------------------------------------


def create_request(
    *,
    by: User,
    model_version: ModelVersion,
    environment: Environment,
    endpoint_name: str,
    justification: str,
    risk_note: str = "",
    rollout: str = DeploymentRequest.Rollout.REPLACE,
    canary_percent: int = 0,
) -> DeploymentRequest:
    """A draft request to deploy `model_version` to `endpoint_name` in `environment`."""
    if not permissions.can_request(by, model_version):
        raise PermissionDenied(f"{by.get_username()} may not request a deployment of {model_version}.")
    endpoint_name = (endpoint_name or "").strip().lower()
    errors: dict[str, str] = {}
    if not _SLUG.match(endpoint_name):
        errors["endpoint_name"] = "Lower-case letters, digits and hyphens, at most 100 characters."
    justification = (justification or "").strip()
    if not justification:
        errors["justification"] = "Say why this version should be deployed."
    if len(justification) > MAX_TEXT or len(risk_note or "") > MAX_TEXT:
        errors["justification"] = f"At most {MAX_TEXT} characters."
    if rollout not in DeploymentRequest.Rollout.values:
        errors["rollout"] = f"Choose one of {', '.join(DeploymentRequest.Rollout.values)}."
    canary_percent = int(canary_percent or 0)
    if rollout == DeploymentRequest.Rollout.CANARY and not 1 <= canary_percent <= 99:
        errors["canary_percent"] = "A canary takes between 1 and 99 % of the traffic."
    if rollout == DeploymentRequest.Rollout.REPLACE:
        canary_percent = 0
    if model_version.status != ModelVersion.Status.READY:
        errors["model_version"] = f"The version is {model_version.get_status_display().lower()}, not ready."
    endpoint = Endpoint.objects.filter(name=endpoint_name).select_related("environment").first()
    if endpoint is not None and endpoint.environment_id != environment.pk:
        errors["endpoint_name"] = f"The endpoint {endpoint_name} belongs to the {endpoint.environment} environment."
    if rollout == DeploymentRequest.Rollout.CANARY and (
        endpoint is None or endpoint.state != Endpoint.State.LIVE or endpoint.current_version_id is None
    ):
        errors["rollout"] = "A canary needs a live endpoint to share traffic with; deploy with replace first."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        request = DeploymentRequest.objects.create(
            model_version=model_version,
            environment=environment,
            requester=by,
            endpoint_name=endpoint_name,
            justification=justification,
            risk_note=(risk_note or "").strip(),
            rollout=rollout,
            canary_percent=canary_percent,
        )
        audit.record(
            actor=by,
            action="deployment.request.created",
            target=request,
            after=audit.snapshot(
                request,
                [
                    "model_version",
                    "environment",
                    "endpoint_name",
                    "rollout",
                    "canary_percent",
                    "state",
                    "justification",
                ],
            ),
        )
    return request


def submit(*, request: DeploymentRequest, by: User) -> DeploymentRequest:
    """Send a draft for approval: it expires after the environment's expiry, its checks run as
    a job (enqueued in this transaction) and the approvers are told."""
    with transaction.atomic():
        request = _locked(request)
        if request.requester_id != by.pk and not permissions.is_admin(by):
            raise PermissionDenied("Only the requester may submit their request.")
        now = timezone.now()
        _transition(
            request,
            "submit",
            by=by,
            submitted_at=now,
            expires_at=now + timedelta(hours=request.environment.request_expiry_hours),
            reason="Waiting for checks and approvals.",
        )
        CheckResult.objects.filter(request=request).delete()
        request.checks_job = jobs.enqueue_job(
            kind=CHECKS_JOB, requested_by=by, target=request, params={"request_id": request.pk}
        )
        request.save(update_fields=["checks_job", "updated_at"])
        accounts.notify(
            selectors.potential_approvers(request),
            f"Approval requested: {request.model_version} to {request.environment}",
            f"{by} asks to deploy {request.model_version} to {request.environment}/{request.endpoint_name}.\n\n"
            f"Justification: {request.justification}\n\nRisk: {request.risk_note or '—'}",
            request_url(request),
            verb="deployment.submitted",
        )
        accounts.notify(
            [request.requester],
            f"Submitted: {request.model_version} to {request.environment}",
            f"Your request #{request.pk} is waiting for checks and approvals "
            f"(expires {request.expires_at:%Y-%m-%d %H:%M} UTC).",
            request_url(request),
            verb="deployment.submitted",
        )
    return request


def rerun_checks(*, request: DeploymentRequest, by: User) -> DeploymentRequest:
    """Run a pending request's checks again (e.g. after the card was completed)."""
    with transaction.atomic():
        request = _locked(request)
        if request.requester_id != by.pk and not permissions.is_admin(by):
            raise PermissionDenied("Only the requester may re-run the checks.")
        if request.state != State.PENDING:
            raise TransitionRefused(
                f"Checks run on pending requests; this one is {request.get_state_display().lower()}."
            )
        request.checks_job = jobs.enqueue_job(
            kind=CHECKS_JOB, requested_by=by, target=request, params={"request_id": request.pk}
        )
        request.save(update_fields=["checks_job", "updated_at"])
        audit.record(
            actor=by, action="deployment.checks.rerun", target=request, after={"job": str(request.checks_job_id)}
        )
    return request


def withdraw(*, request: DeploymentRequest, by: User, reason: str = "") -> DeploymentRequest:
    """The requester takes back a draft, pending or approved (not yet deploying) request."""
    with transaction.atomic():
        request = _locked(request)
        if request.requester_id != by.pk and not permissions.is_admin(by):
            raise PermissionDenied("Only the requester may withdraw their request.")
        _transition(request, "withdraw", by=by, reason=(reason or "").strip() or f"Withdrawn by {by.get_username()}.")
        accounts.notify(
            selectors.potential_approvers(request) if request.submitted_at else [],
            f"Withdrawn: {request.model_version} to {request.environment}",
            request.state_reason,
            request_url(request),
            verb="deployment.withdrawn",
        )
    return request


# --- Checks ------------------------------------------------------------------------------------


def record_checks(
    *, request: DeploymentRequest, outcomes: Sequence[policy.CheckOutcome], job: Job | None = None
) -> DeploymentRequest:
    """Store the checks job's results (one row per check, replaced on a re-run). A pending
    request whose approvals are already complete becomes approved when all checks pass."""
    with transaction.atomic():
        request = _locked(request)
        now = timezone.now()
        for outcome in outcomes:
            CheckResult.objects.update_or_create(
                request=request,
                name=outcome.name,
                defaults={"status": outcome.status, "evidence": outcome.evidence, "checked_at": now},
            )
        results = {outcome.name: outcome.status for outcome in outcomes}
        audit.record(actor=None, action="deployment.checks.recorded", target=request, after={"checks": results})
        if request.state != State.PENDING:
            return request
        passed, blocking = selectors.checks_passed(request)
        if not passed:
            failing = [name for name in blocking if results.get(name) in ("fail", "error")]
            request.state_reason = "Checks not passed: " + ", ".join(failing or blocking)
            request.save(update_fields=["state_reason", "updated_at"])
            accounts.notify(
                [request.requester],
                f"Checks failed: {request.model_version} to {request.environment}",
                request.state_reason,
                request_url(request),
                verb="deployment.checks_failed",
            )
            return request
        state = selectors.policy_state(request)
        if state.fully_approved:
            _become_approved(request, by=None)
        else:
            request.state_reason = f"Checks passed; waiting for approvals ({state.summary})."
            request.save(update_fields=["state_reason", "updated_at"])
    return request


# --- Approvals -----------------------------------------------------------------------------------


def approve(
    *,
    request: DeploymentRequest,
    by: User,
    comment: str,
    password: str | None = None,
    http_request: HttpRequest | None = None,
) -> Approval:
    """Approve with a comment (and the password again when the environment asks for step-up).
    The request is locked while the approval is counted, so two approvers clicking at once are
    counted one after the other: exactly one of them makes it `approved`."""
    return _decide(
        request=request,
        by=by,
        decision=Approval.Decision.APPROVE,
        comment=comment,
        password=password,
        http_request=http_request,
    )


def reject(
    *,
    request: DeploymentRequest,
    by: User,
    comment: str,
    password: str | None = None,
    http_request: HttpRequest | None = None,
) -> Approval:
    """Reject with a comment: one rejection by an eligible approver ends the request."""
    return _decide(
        request=request,
        by=by,
        decision=Approval.Decision.REJECT,
        comment=comment,
        password=password,
        http_request=http_request,
    )


def _decide(
    *,
    request: DeploymentRequest,
    by: User,
    decision: str,
    comment: str,
    password: str | None,
    http_request: HttpRequest | None,
) -> Approval:
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "A comment is required to approve or reject."})
    if len(comment) > MAX_TEXT:
        raise ValidationError({"comment": f"At most {MAX_TEXT} characters."})
    environment = Environment.objects.get(pk=request.environment_id)
    # Verified before taking the lock: hashing a password is slow and must not hold the row.
    step_up = environment.requires_step_up
    if step_up:
        _verify_step_up(by, password, http_request)
    with transaction.atomic():
        request = _locked(request)
        verb = "approve" if decision == Approval.Decision.APPROVE else "reject"
        if request.state != State.PENDING:
            raise TransitionRefused(
                f"Cannot {verb} a request that is {request.get_state_display().lower()}; only pending requests can be."
            )
        state = selectors.policy_state(request)
        membership = selectors.memberships_for([by.pk])[by.pk]
        refusal = state.decision_refusal(by.pk, membership)
        if refusal:
            raise PermissionDenied(refusal)
        rule_id = None
        if decision == Approval.Decision.APPROVE:
            rule_id = state.rule_for_new_approval(by.pk, membership)
            if rule_id is None:
                raise TransitionRefused(
                    "Your approval would not count: the rules you can approve for already have their approvals "
                    f"({state.summary})."
                )
        approval = Approval.objects.create(
            request=request, approver=by, decision=decision, comment=comment, rule_id=rule_id, step_up=step_up
        )
        audit.record(
            actor=by,
            action=f"deployment.approval.{decision}",
            target=request,
            before={"state": request.state},
            after={"decision": decision, "comment": comment, "rule": rule_id, "step_up": step_up},
        )
        if decision == Approval.Decision.REJECT:
            _transition(request, "reject", by=by, decided_at=timezone.now(), reason=f"Rejected by {by}: {comment}")
            accounts.notify(
                [request.requester],
                f"Rejected: {request.model_version} to {request.environment}",
                f"{by} rejected your request #{request.pk}: {comment}",
                request_url(request),
                verb="deployment.rejected",
            )
            return approval
        state = selectors.policy_state(request)
        _store_assignment(request, state)
        passed, blocking = selectors.checks_passed(request)
        if state.fully_approved and passed:
            _become_approved(request, by=by)
        else:
            waiting = []
            if not state.fully_approved:
                waiting.append(f"approvals ({state.summary})")
            if not passed:
                waiting.append("checks (" + ", ".join(blocking) + ")")
            request.state_reason = "Waiting for " + " and ".join(waiting) + "."
            request.save(update_fields=["state_reason", "updated_at"])
            accounts.notify(
                [request.requester],
                f"Approved by {by}: {request.model_version} to {request.environment}",
                f"{comment}\n\n{request.state_reason}",
                request_url(request),
                verb="deployment.approval",
            )
            if not state.fully_approved:
                still = [u for u in selectors.potential_approvers(request) if _would_count(state, u)]
                accounts.notify(
                    still,
                    f"Your approval is needed: {request.model_version} to {request.environment}",
                    f"{by} approved; still needed: {state.summary}.",
                    request_url(request),
                    verb="deployment.submitted",
                )
    return approval


def _would_count(state: policy.PolicyState, user: User) -> bool:
    membership = selectors.memberships_for([user.pk])[user.pk]
    return state.may_approve(user.pk, membership)


def _store_assignment(request: DeploymentRequest, state: policy.PolicyState) -> None:
    """Write which rule each approval counts towards (the inbox counts room from it)."""
    for approval in Approval.objects.filter(request=request, decision=Approval.Decision.APPROVE):
        rule_id = state.assignment.get(approval.approver_id)
        if approval.rule_id != rule_id:
            Approval.objects.filter(pk=approval.pk).update(rule_id=rule_id)


def _become_approved(request: DeploymentRequest, *, by: User | None) -> None:
    """Pending → approved (the caller holds the lock); the requester and deployers are told,
    and the deploy starts at once when the requester is the deployer."""
    now = timezone.now()
    _transition(request, "approve", by=by, decided_at=now, reason="All approval rules met and all checks passed.")
    environment = request.environment
    accounts.notify(
        {request.requester, *selectors.deployers(request)},
        f"Approved: {request.model_version} to {environment}",
        f"Request #{request.pk} has every approval and passed every check.",
        request_url(request),
        verb="deployment.approved",
    )
    if environment.deployer_team_id is None:
        if policy.in_change_window(environment.change_window, now):
            _start_deploy_locked(request, by=request.requester, actor=by)
        else:
            request.state_reason = (
                "Approved; waiting for the change window ("
                + policy.describe_change_window(environment.change_window)
                + ") to deploy."
            )
            request.save(update_fields=["state_reason", "updated_at"])


def _verify_step_up(user: User, password: str | None, http_request: HttpRequest | None) -> None:
    if not password:
        raise PermissionDenied("This environment asks approvers to re-enter their password.")
    if http_request is None:
        # Services called outside a view (API, shell): axes still counts failures per address.
        http_request = HttpRequest()
        http_request.META["REMOTE_ADDR"] = request_context.current().ip_address or "127.0.0.1"
    authenticated = authenticate(http_request, username=user.get_username(), password=password)
    if authenticated is None or authenticated.pk != user.pk:
        raise PermissionDenied("The password is not correct.")


# --- Expiry --------------------------------------------------------------------------------------


def expire_pending(*, now: datetime | None = None) -> int:
    """Expire pending requests past their expiry (Celery beat). Each is locked and re-checked,
    so a request approved meanwhile is left alone. Returns how many expired."""
    now = now or timezone.now()
    due = list(
        DeploymentRequest.objects.filter(state=State.PENDING, expires_at__lt=now).values_list("pk", flat=True)[:1000]
    )
    expired = 0
    for pk in due:
        with transaction.atomic():
            request = DeploymentRequest.objects.select_for_update(of=("self",)).select_related("environment").get(pk=pk)
            if request.state != State.PENDING or request.expires_at is None or request.expires_at >= now:
                continue
            _transition(
                request,
                "expire",
                by=None,
                decided_at=now,
                reason=f"Not approved within {request.environment.request_expiry_hours} hours.",
            )
            accounts.notify(
                [request.requester],
                f"Expired: {request.model_version} to {request.environment}",
                f"Request #{request.pk} expired before it was approved. Submit a new one if it is still needed.",
                request_url(request),
                verb="deployment.expired",
            )
            expired += 1
    return expired


# --- Deploy --------------------------------------------------------------------------------------


def start_deploy(*, request: DeploymentRequest, by: User) -> DeploymentRequest:
    """Approved → deploying: the deploy job is enqueued in this transaction. Only within the
    change window, by a deployer of the environment."""
    with transaction.atomic():
        request = _locked(request)
        if not permissions.can_deploy(by, request):
            raise PermissionDenied(f"{by.get_username()} may not deploy to {request.environment}.")
        _start_deploy_locked(request, by=by, actor=by)
    return request


def _start_deploy_locked(request: DeploymentRequest, *, by: User, actor: User | None) -> None:
    environment = request.environment
    if request.state == State.APPROVED:
        passed, blocking = selectors.checks_passed(request)
        if not passed:
            raise TransitionRefused("Cannot deploy: checks not passed: " + ", ".join(blocking))
        if not policy.in_change_window(environment.change_window, timezone.now()):
            raise TransitionRefused(
                f"Cannot deploy outside the change window ({policy.describe_change_window(environment.change_window)})."
            )
        busy = (
            DeploymentRequest.objects.filter(endpoint_name=request.endpoint_name, state=State.DEPLOYING)
            .exclude(pk=request.pk)
            .first()
        )
        if busy is not None:
            raise TransitionRefused(f"Request #{busy.pk} is already deploying to {request.endpoint_name}; wait for it.")
    _transition(
        request,
        "start_deploy",
        by=actor,
        deployed_by=by,
        reason=f"Deploying (started by {by.get_username()}).",
    )
    request.deploy_job = jobs.enqueue_job(
        kind=DEPLOY_JOB, requested_by=by, target=request, params={"request_id": request.pk}
    )
    request.save(update_fields=["deploy_job", "updated_at"])


def mark_live(
    *, request: DeploymentRequest, job: Job | None = None, evidence: Mapping[str, Any] | None = None
) -> Endpoint:
    """Deploying → live (called by the deploy job): the endpoint is created or switched —
    replace: the version becomes current and the one before becomes previous; canary: it takes
    its share of the traffic beside the current one — and the history gets its revisions.
    A second call for the same job (a redelivered message) changes nothing."""
    with transaction.atomic():
        request = _locked(request)
        if request.state == State.LIVE and job is not None and request.deploy_job_id == job.pk:
            return Endpoint.objects.get(name=request.endpoint_name)
        if job is not None and request.deploy_job_id != job.pk:
            raise TransitionRefused(f"Job {job.pk} is not this request's deploy job.")
        if request.state != State.DEPLOYING:
            _refuse(request, "mark_live")
        now = timezone.now()
        version = request.model_version
        endpoint = Endpoint.objects.select_for_update().filter(name=request.endpoint_name).first()
        before = _endpoint_snapshot(endpoint) if endpoint else None
        if endpoint is None:
            endpoint = Endpoint.objects.create(
                name=request.endpoint_name,
                environment=request.environment,
                owner=request.requester,
                team=version.registered_model.team,
            )
        if endpoint.environment_id != request.environment_id:
            raise TransitionRefused(f"The endpoint {endpoint.name} belongs to the {endpoint.environment} environment.")
        open_revisions = {r.role: r for r in endpoint.revisions.select_for_update(of=("self",)).filter(ended_at=None)}
        if request.rollout == DeploymentRequest.Rollout.CANARY:
            if endpoint.current_version_id is None or endpoint.state != Endpoint.State.LIVE:
                raise TransitionRefused("A canary needs a live endpoint with a current version.")
            _supersede_canary(endpoint, open_revisions, request, now, action="canary_replaced")
            primary = open_revisions.get(EndpointRevision.Role.PRIMARY)
            if primary is not None:
                _end(primary, now, "canary_started")
            EndpointRevision.objects.create(
                endpoint=endpoint,
                model_version=endpoint.current_version,
                request=primary.request if primary else endpoint.live_request,
                role=EndpointRevision.Role.PRIMARY,
                traffic_percent=100 - request.canary_percent,
                started_at=now,
            )
            EndpointRevision.objects.create(
                endpoint=endpoint,
                model_version=version,
                request=request,
                role=EndpointRevision.Role.CANARY,
                traffic_percent=request.canary_percent,
                started_at=now,
            )
            endpoint.canary_version, endpoint.canary_percent = version, request.canary_percent
        else:
            _supersede_canary(endpoint, open_revisions, request, now, action="replaced")
            primary = open_revisions.get(EndpointRevision.Role.PRIMARY)
            if primary is not None:
                _end(primary, now, "replaced")
            old_request = endpoint.live_request
            if old_request is not None and old_request.pk != request.pk:
                _retire_request(old_request, f"Replaced by request #{request.pk}.")
            if endpoint.current_version_id and endpoint.current_version_id != version.pk:
                endpoint.previous_version_id = endpoint.current_version_id
            endpoint.current_version = version
            endpoint.live_request = request
            EndpointRevision.objects.create(
                endpoint=endpoint,
                model_version=version,
                request=request,
                role=EndpointRevision.Role.PRIMARY,
                traffic_percent=100,
                started_at=now,
            )
        endpoint.state = Endpoint.State.LIVE
        endpoint.save()
        _transition(request, "mark_live", by=None, deployed_at=now, reason=f"Live on {endpoint.name}.")
        audit.record(
            actor=request.deployed_by,
            action="deployment.endpoint.live",
            target=endpoint,
            before=before,
            after={**_endpoint_snapshot(endpoint), "request": request.pk, "evidence": dict(evidence or {})},
        )
        accounts.notify(
            {request.requester, endpoint.owner, *_approvers_of(request)},
            f"Live: {version} on {endpoint.name} ({endpoint.environment})",
            f"Request #{request.pk} is live"
            + (f" as a canary taking {request.canary_percent} % of traffic." if request.rollout == "canary" else "."),
            endpoint_url(endpoint),
            verb="deployment.live",
        )
    return endpoint


def mark_failed(*, request: DeploymentRequest, reason: str, job: Job | None = None) -> DeploymentRequest:
    """Deploying → failed (called by the deploy job); the endpoint is untouched."""
    with transaction.atomic():
        request = _locked(request)
        if request.state == State.FAILED and job is not None and request.deploy_job_id == job.pk:
            return request
        _transition(request, "mark_failed", by=None, reason=f"Deploy failed: {reason}"[:5000])
        accounts.notify(
            {request.requester, request.deployed_by},
            f"Deploy failed: {request.model_version} to {request.environment}",
            request.state_reason,
            request_url(request),
            verb="deployment.failed",
        )
    return request


# --- Endpoints: rollback, retire, invoke permission ----------------------------------------------------


def rollback_endpoint(*, endpoint: Endpoint, by: User, reason: str = "") -> Endpoint:
    """Return the endpoint to its previous live version. With a canary running, the canary is
    what is rolled back (all traffic returns to the current version)."""
    reason = (reason or "").strip()
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint)
        if not permissions.can_operate_endpoint(by, endpoint):
            raise PermissionDenied(f"{by.get_username()} may not roll back {endpoint.name}.")
        if endpoint.state != Endpoint.State.LIVE:
            raise TransitionRefused(f"Cannot roll back {endpoint.name}: it is retired.")
        before = _endpoint_snapshot(endpoint)
        now = timezone.now()
        open_revisions = {r.role: r for r in endpoint.revisions.select_for_update(of=("self",)).filter(ended_at=None)}
        why = reason or f"Rolled back by {by.get_username()}."
        if endpoint.canary_version_id is not None:
            canary = open_revisions.get(EndpointRevision.Role.CANARY)
            if canary is not None:
                _end(canary, now, "rollback")
                if canary.request_id:
                    _request_transition(canary.request, "rollback", by=by, reason=why)
            primary = open_revisions.get(EndpointRevision.Role.PRIMARY)
            if primary is not None:
                _end(primary, now, "canary_rolled_back")
            EndpointRevision.objects.create(
                endpoint=endpoint,
                model_version=endpoint.current_version,
                request=primary.request if primary else endpoint.live_request,
                role=EndpointRevision.Role.PRIMARY,
                traffic_percent=100,
                started_at=now,
            )
            endpoint.canary_version, endpoint.canary_percent = None, 0
            rolled = canary.request if canary else None
        else:
            if endpoint.previous_version_id is None:
                raise TransitionRefused(f"Cannot roll back {endpoint.name}: it has no previous live version.")
            primary = open_revisions.get(EndpointRevision.Role.PRIMARY)
            rolled = endpoint.live_request
            if primary is not None:
                _end(primary, now, "rollback")
            if rolled is not None:
                _request_transition(rolled, "rollback", by=by, reason=why)
            earlier = list(
                endpoint.revisions.filter(role=EndpointRevision.Role.PRIMARY)
                .exclude(ended_at=None)
                .exclude(pk=primary.pk if primary else None)
                .select_related("request")
                .order_by("-started_at", "-id")
            )
            restored = next((r for r in earlier if r.model_version_id == endpoint.previous_version_id), None)
            restored_request = restored.request if restored else None
            if restored_request is not None and restored_request.state == State.RETIRED:
                _request_transition(restored_request, "restore", by=by, reason=f"Live again after a rollback: {why}")
            EndpointRevision.objects.create(
                endpoint=endpoint,
                model_version_id=endpoint.previous_version_id,
                request=restored_request,
                role=EndpointRevision.Role.PRIMARY,
                traffic_percent=100,
                started_at=now,
            )
            older = [
                r.model_version_id
                for r in earlier
                if restored is not None
                and (r.started_at, r.pk) < (restored.started_at, restored.pk)
                and r.model_version_id != endpoint.previous_version_id
            ]
            endpoint.current_version_id = endpoint.previous_version_id
            endpoint.previous_version_id = older[0] if older else None
            endpoint.live_request = restored_request
        endpoint.save()
        audit.record(
            actor=by,
            action="deployment.endpoint.rolled_back",
            target=endpoint,
            before=before,
            after={**_endpoint_snapshot(endpoint), "reason": why},
        )
        accounts.notify(
            {endpoint.owner, *([rolled.requester] if rolled else [])},
            f"Rolled back: {endpoint.name} ({endpoint.environment})",
            f"{why} Now serving {endpoint.current_version}.",
            endpoint_url(endpoint),
            verb="deployment.rolled_back",
        )
    return endpoint


def retire_endpoint(*, endpoint: Endpoint, by: User, reason: str = "") -> Endpoint:
    """Take an endpoint out of service: it stops answering, its requests become retired."""
    reason = (reason or "").strip() or f"Retired by {by.get_username()}."
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint)
        if not permissions.can_operate_endpoint(by, endpoint):
            raise PermissionDenied(f"{by.get_username()} may not retire {endpoint.name}.")
        if endpoint.state != Endpoint.State.LIVE:
            raise TransitionRefused(f"Cannot retire {endpoint.name}: it is already retired.")
        before = _endpoint_snapshot(endpoint)
        now = timezone.now()
        requesters = set()
        for revision in (
            endpoint.revisions.select_for_update(of=("self",)).filter(ended_at=None).select_related("request")
        ):
            _end(revision, now, "retired")
            if revision.request is not None and revision.request.state == State.LIVE:
                _request_transition(revision.request, "retire", by=by, reason=reason)
                requesters.add(revision.request.requester)
        endpoint.state = Endpoint.State.RETIRED
        endpoint.canary_version, endpoint.canary_percent = None, 0
        endpoint.save()
        audit.record(
            actor=by,
            action="deployment.endpoint.retired",
            target=endpoint,
            before=before,
            after={**_endpoint_snapshot(endpoint), "reason": reason},
        )
        accounts.notify(
            {endpoint.owner, *requesters},
            f"Retired: {endpoint.name} ({endpoint.environment})",
            reason,
            endpoint_url(endpoint),
            verb="deployment.retired",
        )
    return endpoint


def grant_invoke(
    *, endpoint: Endpoint, by: User, user: User | None = None, team: Team | None = None, grant: bool = True
) -> None:
    """Grant (or take back) the permission to call the endpoint, to one user or one team."""
    if (user is None) == (team is None):
        raise ValidationError("Grant to exactly one user or one team.")
    if not permissions.can_manage_endpoint(by, endpoint):
        raise PermissionDenied(f"{by.get_username()} may not share {endpoint.name}.")
    grantee = user if user is not None else team.group
    with transaction.atomic():
        (assign_perm if grant else remove_perm)("deployments.invoke_endpoint", grantee, endpoint)
        audit.record(
            actor=by,
            action="deployment.endpoint.invoke_granted" if grant else "deployment.endpoint.invoke_revoked",
            target=endpoint,
            after={"user": user.username if user else None, "team": team.name if team else None},
        )


# --- Environments (admins) -------------------------------------------------------------------------

POLICY_FIELDS = (
    "description",
    "display_order",
    "allow_self_approval",
    "min_card_completeness",
    "metric_thresholds",
    "forbid_unapproved_pii",
    "require_evaluation_job",
    "change_window",
    "request_expiry_hours",
    "requires_step_up",
    "allow_pickle",
    "deployer_team",
)


def create_environment(
    *, by: User, name: str, rules: Iterable[Mapping[str, Any]] = (), **policy_values: Any
) -> Environment:
    """A new environment with its policy and approval rules (admins)."""
    if not permissions.can_edit_policy(by):
        raise PermissionDenied("Only platform admins may define environments.")
    if Environment.objects.filter(name=name).exists():
        raise ValidationError({"name": f"An environment called {name!r} already exists."})
    with transaction.atomic():
        environment = Environment(name=name)
        _apply_policy(environment, policy_values)
        environment.save()
        _replace_rules(environment, rules)
        audit.record(
            actor=by, action="deployment.environment.created", target=environment, after=_policy_snapshot(environment)
        )
    return environment


def update_environment_policy(
    *, environment: Environment, by: User, rules: Iterable[Mapping[str, Any]] | None = None, **changes: Any
) -> Environment:
    """Change an environment's policy and, when `rules` is given, replace its approval rules
    ([{"team": Team | id} or {"role": name}, "required_approvals": n]). Audited with the whole
    policy before and after. Pending requests are judged by the rules in force when decided."""
    if not permissions.can_edit_policy(by):
        raise PermissionDenied("Only platform admins may change environment policies.")
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown policy field(s): {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        environment = Environment.objects.select_for_update().get(pk=environment.pk)
        before = _policy_snapshot(environment)
        _apply_policy(environment, changes)
        environment.save()
        if rules is not None:
            _replace_rules(environment, rules)
        after = _policy_snapshot(environment)
        if after != before:
            audit.record(
                actor=by, action="deployment.environment.policy_changed", target=environment, before=before, after=after
            )
    return environment


def _apply_policy(environment: Environment, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key not in POLICY_FIELDS:
            raise ValidationError(f"Unknown policy field {key!r}.")
        setattr(environment, key, value)
    environment.full_clean(exclude=["name"] if environment.pk else None, validate_unique=environment.pk is None)


def _replace_rules(environment: Environment, rules: Iterable[Mapping[str, Any]]) -> None:
    environment.approval_rules.all().delete()
    for index, spec in enumerate(rules, start=1):
        team = spec.get("team")
        if team is not None and not isinstance(team, Team):
            team = Team.objects.filter(pk=team).first()
            if team is None:
                raise ValidationError(f"Rule {index}: unknown team.")
        role = spec.get("role") or ""
        if role and role not in ALL_ROLES:
            raise ValidationError(f"Rule {index}: unknown role {role!r}.")
        rule = ApprovalRule(
            environment=environment, team=team, role=role, required_approvals=int(spec.get("required_approvals", 1))
        )
        rule.full_clean()
        rule.save()


def _policy_snapshot(environment: Environment) -> dict[str, Any]:
    data = audit.snapshot(environment, ["name", *POLICY_FIELDS])
    data["approval_rules"] = [
        {
            "team": rule.team.name if rule.team_id else None,
            "role": rule.role,
            "required_approvals": rule.required_approvals,
        }
        for rule in environment.approval_rules.select_related("team").order_by("id")
    ]
    return data


# --- Helpers ------------------------------------------------------------------------------------------


def _locked(request: DeploymentRequest) -> DeploymentRequest:
    """The request row, locked for this transaction, with fresh state."""
    return (
        DeploymentRequest.objects.select_for_update(of=("self",))
        .select_related("environment", "model_version__registered_model", "requester")
        .get(pk=request.pk)
    )


def _locked_endpoint(endpoint: Endpoint) -> Endpoint:
    return (
        Endpoint.objects.select_for_update(of=("self",))
        .select_related("environment", "owner", "live_request", "current_version")
        .get(pk=endpoint.pk)
    )


def _refuse(request: DeploymentRequest, action: str) -> None:
    sources, _, verb = TRANSITIONS[action]
    allowed = " or ".join(State(s).label.lower() for s in sources)
    raise TransitionRefused(
        f"Cannot {verb} request #{request.pk}: it is {request.get_state_display().lower()}; "
        f"only {allowed} requests can be."
    )


def _transition(request: DeploymentRequest, action: str, *, by: User | None, reason: str = "", **fields: Any) -> None:
    """Move a locked request along one allowed edge, with its audit event."""
    sources, target, _ = TRANSITIONS[action]
    if request.state not in sources:
        _refuse(request, action)
    before = audit.snapshot(request, REQUEST_AUDIT_FIELDS)
    request.state = target
    request.state_reason = reason
    for key, value in fields.items():
        setattr(request, key, value)
    request.save()
    audit.record(
        actor=by,
        action=f"deployment.request.{target}",
        target=request,
        before=before,
        after=audit.snapshot(request, REQUEST_AUDIT_FIELDS),
    )


def _request_transition(request: DeploymentRequest, action: str, *, by: User | None, reason: str) -> None:
    _transition(_locked(request), action, by=by, reason=reason)


def _retire_request(request: DeploymentRequest, reason: str) -> None:
    locked = _locked(request)
    if locked.state == State.LIVE:
        _transition(locked, "retire", by=None, reason=reason)


def _supersede_canary(endpoint, open_revisions, request, now, *, action: str) -> None:
    canary = open_revisions.get(EndpointRevision.Role.CANARY)
    if canary is None:
        return
    _end(canary, now, action)
    if canary.request_id and canary.request_id != request.pk:
        _retire_request(canary.request, f"Canary replaced by request #{request.pk}.")
    endpoint.canary_version, endpoint.canary_percent = None, 0


def _end(revision: EndpointRevision, now: datetime, action: str) -> None:
    revision.ended_at, revision.ended_by_action = now, action
    revision.save(update_fields=["ended_at", "ended_by_action"])


def _endpoint_snapshot(endpoint: Endpoint) -> dict[str, Any]:
    return audit.snapshot(
        endpoint,
        [
            "state",
            "current_version",
            "previous_version",
            "canary_version",
            "canary_percent",
            "live_request",
            "environment",
        ],
    )


def _approvers_of(request: DeploymentRequest) -> list[User]:
    return list(User.objects.filter(approvals__request=request, approvals__decision=Approval.Decision.APPROVE))
