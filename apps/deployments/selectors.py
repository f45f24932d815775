"""Every read of deployments, filtered by what the user may see. Visibility and the approvers'
inbox are each one query (subqueries over the model's visibility, the approval rules and the
guardian direct-FK shares), like the catalog's and registry's."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from apps.accounts.models import User
from apps.accounts.roles import ALL_ROLES
from apps.deployments import permissions, policy
from apps.deployments.models import (
    Approval,
    ApprovalRule,
    CheckResult,
    DeploymentRequest,
    Endpoint,
    EndpointGroupObjectPermission,
    EndpointRevision,
    EndpointUserObjectPermission,
    Environment,
)
from apps.registry.selectors import visible_models


def environments() -> QuerySet[Environment]:
    """Environments and their rules: policy is organisation metadata, visible to everyone."""
    return Environment.objects.select_related("deployer_team").prefetch_related(
        Prefetch("approval_rules", queryset=ApprovalRule.objects.select_related("team"))
    )


def environment_by_name(name: str) -> Environment | None:
    return environments().filter(name=name).first()


# --- Approval rules and who matches them --------------------------------------------------------


def memberships_for(user_ids) -> dict[int, policy.Membership]:
    """Each user's role names and team ids, in one query."""
    ids = list(user_ids)
    roles: dict[int, set[str]] = {pk: set() for pk in ids}
    teams: dict[int, set[int]] = {pk: set() for pk in ids}
    rows = User.groups.through.objects.filter(user_id__in=ids).values_list("user_id", "group__name", "group__team__id")
    for user_id, group_name, team_id in rows:
        if group_name in ALL_ROLES:
            roles[user_id].add(group_name)
        if team_id is not None:
            teams[user_id].add(team_id)
    return {pk: policy.Membership(frozenset(roles[pk]), frozenset(teams[pk])) for pk in ids}


def _rules_matching(user) -> QuerySet[ApprovalRule]:
    """Rules naming one of `user`'s teams or roles (a subquery, no query of its own)."""
    user_groups = Group.objects.filter(user=user)
    return ApprovalRule.objects.filter(
        Q(team__group__in=user_groups.values("pk")) | Q(role__in=user_groups.values("name"))
    )


def approver_environment_ids(user) -> QuerySet:
    return _rules_matching(user).values("environment_id")


def policy_state(request: DeploymentRequest) -> policy.PolicyState:
    """Where the request's approvals stand against its environment's rules (three queries)."""
    rules = [
        policy.RuleSpec.of(rule)
        for rule in ApprovalRule.objects.filter(environment_id=request.environment_id).select_related("team")
    ]
    votes = [
        policy.Vote(approver_id, decision)
        for approver_id, decision in Approval.objects.filter(request=request)
        .order_by("created_at", "id")
        .values_list("approver_id", "decision")
    ]
    memberships = memberships_for({vote.approver_id for vote in votes})
    return policy.evaluate(
        rules=rules,
        requester_id=request.requester_id,
        allow_self_approval=request.environment.allow_self_approval,
        votes=votes,
        memberships=memberships,
    )


def potential_approvers(request: DeploymentRequest) -> QuerySet[User]:
    """Active people who may still decide on the request: in a rule's team or role, not yet
    decided, not the requester unless self-approval is allowed."""
    rules = ApprovalRule.objects.filter(environment_id=request.environment_id)
    groups = Group.objects.filter(
        Q(team__id__in=rules.exclude(team=None).values("team_id")) | Q(name__in=rules.values("role"))
    )
    people = User.objects.filter(is_active=True, groups__in=groups).exclude(
        pk__in=Approval.objects.filter(request=request).values("approver_id")
    )
    if not request.environment.allow_self_approval:
        people = people.exclude(pk=request.requester_id)
    return people.distinct().order_by("username")


def deployers(request: DeploymentRequest) -> QuerySet[User]:
    """Who is told an approved request is ready to push out."""
    team = request.environment.deployer_team
    if team is None:
        return User.objects.filter(pk=request.requester_id)
    return User.objects.filter(is_active=True, groups=team.group_id).order_by("username")


# --- Requests ---------------------------------------------------------------------------------


def requests_for_list(
    user, *, state: str = "", environment: str = "", model: str = "", requester: str = ""
) -> QuerySet[DeploymentRequest]:
    """The requests list: visible requests narrowed by the filters, newest first, each with its
    approval count (one query per page)."""
    requests = visible_requests(user)
    if state:
        requests = requests.filter(state=state)
    if environment:
        requests = requests.filter(environment__name=environment)
    if model:
        requests = requests.filter(model_version__registered_model__name__icontains=model)
    if requester:
        requests = requests.filter(requester__username=requester)
    return (
        requests.select_related("model_version__registered_model", "environment", "requester")
        .annotate(approval_count=Count("approvals", filter=Q(approvals__decision=Approval.Decision.APPROVE)))
        .order_by("-created_at", "-id")
    )


def visible_requests(user) -> QuerySet[DeploymentRequest]:
    """Requests `user` may see: of models they can see, their own, their environments' (as an
    approver); Operations and admins see all."""
    if not user.is_authenticated:
        return DeploymentRequest.objects.none()
    if permissions.is_admin(user) or permissions.is_ops(user):
        return DeploymentRequest.objects.all()
    return DeploymentRequest.objects.filter(
        Q(requester=user)
        | Q(model_version__registered_model__in=visible_models(user).values("pk"))
        | Q(environment_id__in=approver_environment_ids(user))
    )


def with_request_data(requests: QuerySet[DeploymentRequest]) -> QuerySet[DeploymentRequest]:
    return requests.select_related(
        "model_version__registered_model",
        "model_version__run",  # the request page's diff reads the run's params and metrics
        "environment",
        "requester",
        "deployed_by",
        "checks_job",
        "deploy_job",
    ).prefetch_related(
        Prefetch("approvals", queryset=Approval.objects.select_related("approver", "rule__team")),
        Prefetch("checks", queryset=CheckResult.objects.order_by("name")),
    )


def request_for(user, request_id) -> DeploymentRequest | None:
    if not str(request_id).isdigit():
        return None
    return with_request_data(visible_requests(user)).filter(pk=int(request_id)).first()


def inbox(user) -> QuerySet[DeploymentRequest]:
    """Pending requests `user` may still approve, oldest first, in one query: an approval rule
    of the request's environment names one of the user's teams or roles and still has room
    (fewer counted approvals than it requires), the user has not decided yet, and they did not
    request it (unless the environment allows self-approval). Approvals are matched to rules
    by services after each decision (Approval.rule), which is what "room" is counted from."""
    if not user.is_authenticated:
        return DeploymentRequest.objects.none()
    counted = (
        Approval.objects.filter(
            request=OuterRef(OuterRef("pk")), rule=OuterRef("pk"), decision=Approval.Decision.APPROVE
        )
        .values("rule")
        .annotate(n=Count("pk"))
        .values("n")
    )
    open_rule = (
        _rules_matching(user)
        .filter(environment=OuterRef("environment"))
        .annotate(counted=Coalesce(Subquery(counted, output_field=IntegerField()), Value(0)))
        .filter(counted__lt=F("required_approvals"))
    )
    decided = Approval.objects.filter(request=OuterRef("pk"), approver=user)
    return (
        DeploymentRequest.objects.filter(state=DeploymentRequest.State.PENDING)
        .filter(Exists(open_rule))
        .exclude(Exists(decided))
        .exclude(Q(requester=user) & Q(environment__allow_self_approval=False))
        .select_related("model_version__registered_model", "environment", "requester")
        .order_by("submitted_at", "pk")
    )


def checks_passed(request: DeploymentRequest) -> tuple[bool, list[str]]:
    """Whether every check the environment requires has a passing result; and the names of
    those that are missing or not passing."""
    required = policy.required_check_names(request.environment)
    results = dict(CheckResult.objects.filter(request=request).values_list("name", "status"))
    blocking = [name for name in required if results.get(name) != CheckResult.Status.PASS]
    return not blocking, blocking


# --- Endpoints ---------------------------------------------------------------------------------


def visible_endpoints(user) -> QuerySet[Endpoint]:
    if not user.is_authenticated:
        return Endpoint.objects.none()
    if permissions.is_admin(user) or permissions.is_ops(user):
        return Endpoint.objects.all()
    shared_to_user = EndpointUserObjectPermission.objects.filter(
        user=user, permission__codename="invoke_endpoint"
    ).values("content_object_id")
    shared_to_groups = EndpointGroupObjectPermission.objects.filter(
        group__user=user, permission__codename="invoke_endpoint"
    ).values("content_object_id")
    return Endpoint.objects.filter(
        Q(owner=user)
        | Q(team_id__in=permissions.team_ids(user))
        | Q(current_version__registered_model__in=visible_models(user).values("pk"))
        | Q(environment_id__in=approver_environment_ids(user))
        | Q(pk__in=shared_to_user)
        | Q(pk__in=shared_to_groups)
    )


def endpoint_for(user, name: str) -> Endpoint | None:
    return (
        visible_endpoints(user)
        .select_related(
            "environment",
            "owner",
            "team",
            "current_version__registered_model",
            "previous_version__registered_model",
            "canary_version__registered_model",
            "live_request",
        )
        .filter(name=name)
        .first()
    )


def endpoint_history(endpoint: Endpoint) -> QuerySet[EndpointRevision]:
    return endpoint.revisions.select_related(
        "model_version__registered_model", "request__requester", "request__deployed_by"
    ).order_by("-started_at", "-id")


def invokable_endpoint(user, name: str) -> Endpoint | None:
    """The live endpoint `name` when `user` may call it (for serving)."""
    endpoint = (
        Endpoint.objects.select_related("environment", "current_version", "canary_version")
        .filter(name=name, state=Endpoint.State.LIVE)
        .first()
    )
    return endpoint if endpoint is not None and permissions.can_invoke(user, endpoint) else None


# --- Audit history visibility (registered in DeploymentsConfig.ready) ----------------------------


def can_view_request_id(user, object_id: str) -> bool:
    return str(object_id).isdigit() and visible_requests(user).filter(pk=int(object_id)).exists()


def can_view_endpoint_id(user, object_id: str) -> bool:
    return str(object_id).isdigit() and visible_endpoints(user).filter(pk=int(object_id)).exists()


def can_view_environment_id(user, object_id: str) -> bool:
    return bool(user.is_authenticated)


# --- A request's timeline, from the audit trail -------------------------------------------------

JOB_NAMES = {"deployments.checks": "Checks job", "deployments.deploy": "Deploy job"}
# Job events worth a line (an enqueue is already told by the request's own event).
JOB_ACTIONS = {"job.start": "started", "job.succeeded": "succeeded", "job.failed": "failed", "job.retry": "retried"}


def request_timeline(request: DeploymentRequest) -> list[dict]:
    """What happened to `request`, oldest first, read from the hash-chained audit trail (not
    from timestamps on the row, which keep only the latest of each): its transitions,
    approvals and rejections with their comments and step-up, check results, and the checks
    and deploy jobs run for it. Two queries whatever the number of events."""
    from django.contrib.contenttypes.models import ContentType

    from apps.audit import selectors as audit_selectors
    from apps.jobs.models import Job

    # Job ids are UUIDs; audit events name objects by their id as text.
    jobs = {
        str(pk): kind
        for pk, kind in Job.objects.filter(
            target_type=ContentType.objects.get_for_model(DeploymentRequest), target_id=str(request.pk)
        ).values_list("pk", "kind")
    }
    events = audit_selectors.events_for_object(
        object_type=DeploymentRequest._meta.label_lower, object_id=str(request.pk)
    )
    for job_id in jobs:
        # OR-ed into the same statement: still one query.
        events = events | audit_selectors.events_for_object(object_type="jobs.job", object_id=str(job_id))
    timeline = []
    for event in events.order_by("sequence"):
        entry = _timeline_entry(event, jobs)
        if entry is not None:
            timeline.append(entry)
    return timeline


def _timeline_entry(event, jobs: dict[str, str]) -> dict | None:
    after = event.after if isinstance(event.after, dict) else {}
    entry = {"at": event.timestamp, "who": event.actor_username, "kind": "", "text": "", "step_up": False}
    action = event.action
    if event.object_type == "jobs.job":
        verb = JOB_ACTIONS.get(action)
        if verb is None:
            return None
        name = JOB_NAMES.get(jobs.get(event.object_id, ""), "Job")
        error = (after.get("error") or "").splitlines()[0] if after.get("error") else ""
        return {**entry, "kind": f"job-{verb}", "text": f"{name} {verb}." + (f" {error}" if error else "")}
    if action == "deployment.request.created":
        return {**entry, "kind": "created", "text": "Created the request."}
    if action.startswith("deployment.approval."):
        decision = action.rsplit(".", 1)[1]
        return {
            **entry,
            "kind": decision,
            "verb": "approved" if decision == Approval.Decision.APPROVE else "rejected",
            "text": str(after.get("comment") or ""),
            "step_up": bool(after.get("step_up")),
        }
    if action == "deployment.checks.recorded":
        checks = after.get("checks") if isinstance(after.get("checks"), dict) else {}
        failing = sorted(name for name, status in checks.items() if status != CheckResult.Status.PASS)
        text = f"Checks recorded: {len(checks) - len(failing)} of {len(checks)} passed"
        return {
            **entry,
            "kind": "checks",
            "text": text + (f" (not passing: {', '.join(failing)})." if failing else "."),
        }
    if action == "deployment.checks.rerun":
        return {**entry, "kind": "checks-rerun", "text": "Asked for the checks to run again."}
    if action.startswith("deployment.request."):
        state = action.rsplit(".", 1)[1]
        label = dict(DeploymentRequest.State.choices).get(state, state)
        reason = str(after.get("state_reason") or "")
        text = (
            reason if reason.lower().startswith(str(label).lower()) else f"{label}." + (f" {reason}" if reason else "")
        )
        return {**entry, "kind": state, "text": text}
    return {**entry, "kind": "other", "text": action}
