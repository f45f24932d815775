"""What each role's home page shows, composed from other apps' selectors (reads only).

Every widget starts from its app's permission-filtered selector (`visible_*`, `inbox`,
`access_inbox`, `jobs_visible_to`, `events_for_log`), takes a fixed-size slice and names its
related rows with `select_related` / `prefetch_related`, so a home costs the same number of
queries for ten objects or a hundred thousand. Widgets of apps built after this one (endpoint
health, alerts, portfolio KPIs) are not imported: the page loads them from their own URL with
htmx, and shows a placeholder while that URL does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import Case, Count, IntegerField, OuterRef, Q, Subquery, Value, When
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.accounts.roles import ALL_ROLES, ROLE_SLUGS
from apps.accounts.selectors import is_platform_admin, platform_admins, role_slugs_of, teams_of, teams_with_counts
from apps.audit.selectors import events_for_log
from apps.catalog import selectors as catalog
from apps.catalog.models import AccessRequest
from apps.deployments import selectors as deployments
from apps.deployments.models import Approval, DeploymentRequest, Endpoint
from apps.jobs.models import Job
from apps.jobs.selectors import jobs_visible_to, status_counts
from apps.registry import cards
from apps.registry import page_selectors as registry_pages
from apps.registry import selectors as registry
from apps.registry.models import ModelVersion, RegisteredModel
from apps.tracking import selectors as tracking
from apps.tracking.models import Lifecycle

# The order in which a user holding several roles gets a default home: the data flow's order
# (the order of DESIGN.md and of the role groups), so the default is predictable; the admin's
# home, which is about the platform rather than the work, comes last.
HOME_ROLE_ORDER: tuple[str, ...] = tuple(ROLE_SLUGS.values())

ROLE_LABELS: dict[str, str] = {
    "scientist": "Data scientist",
    "engineer": "ML engineer",
    "approver": "Approver",
    "ops": "Operations",
    "owner": "Business owner",
    "admin": "Platform admin",
}

ROLE_HOME_INTRO: dict[str, str] = {
    "scientist": "Find data in the catalog, track experiments and compare runs.",
    "engineer": "Register models, write model cards and request deployments.",
    "approver": "Review deployment requests and access requests waiting for you.",
    "ops": "Watch live endpoints, jobs, drift and alerts.",
    "owner": "Follow the cost, value and ROI of your ML use cases.",
    "admin": "Manage teams, roles and permissions; read the audit log.",
}

# Widgets served by apps to the right of this one in the dependency order (or built at the
# same time): embedded by URL name with htmx, never imported.
FRAGMENTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # role: ((URL name, title, what the placeholder says), ...)
    "ops": (
        ("monitoring:home_widget", "Endpoint health", "Request rates, errors and latency of live endpoints."),
        ("alerting:home_widget", "Open alerts", "Alerts raised by monitoring rules that nobody has closed."),
    ),
    "owner": (("value:home_widget", "Portfolio", "Cost, value and ROI of the use cases you can see."),),
}

# Audit actions that change who may see or do what: shares and grants of objects, role and
# team membership changes, decisions on dataset access and approval policies. Listed exactly
# (not matched by suffix) so the audit table's action index answers the widget at any size;
# an app that adds a share action adds it here.
PERMISSION_ACTIONS: tuple[str, ...] = (
    "user.set_roles",
    "user.invite",
    "user.deactivate",
    "user.reactivate",
    "admin.object_permissions_changed",
    "team.add_member",
    "team.remove_member",
    "team.set_lead",
    "access.approve",
    "access.revoke",
    "dataset.share",
    "dataset.unshare",
    "tracking.experiment.shared",
    "tracking.experiment.unshared",
    "registry.model.shared",
    "registry.model.unshared",
    "deployment.endpoint.invoke_granted",
    "deployment.endpoint.invoke_revoked",
    "deployment.environment.policy_changed",
    "value.use_case.shared",
    "value.use_case.unshared",
)

LIST_SIZE = 6
DORMANT_AFTER = timedelta(days=90)


class RoleNotHeld(Exception):
    """The user asked for the home of a role they do not hold."""


class UnknownRole(Exception):
    """The role asked for is not one of the six."""


# --- Which home ----------------------------------------------------------------------------------


def home_roles(user) -> list[str]:
    """The role slugs `user` holds, in HOME_ROLE_ORDER (superusers count as admins)."""
    held = role_slugs_of(user)
    return [slug for slug in HOME_ROLE_ORDER if slug in held]


def choose_home_role(user, *, requested: str | None = None, remembered: str | None = None) -> str | None:
    """The role whose home `user` sees: the one `requested` (raises UnknownRole or RoleNotHeld
    when it is not a role or not theirs), else the one `remembered` from an earlier switch if they
    still hold it, else their first role; None when they hold no role."""
    roles = home_roles(user)
    if requested is not None:
        if requested not in ROLE_LABELS:
            raise UnknownRole(requested)
        if requested not in roles:
            raise RoleNotHeld(requested)
        return requested
    if remembered in roles:
        return remembered
    return roles[0] if roles else None


def home_for(user, role: str | None) -> dict:
    """The template context of `user`'s home as `role` (which they must hold; None for the
    empty home of a user without roles)."""
    roles = home_roles(user)
    context = {
        "role": role,
        "role_label": ROLE_LABELS.get(role or "", ""),
        "role_intro": ROLE_HOME_INTRO.get(role or "", ""),
        "role_tabs": [{"slug": slug, "label": ROLE_LABELS[slug], "active": slug == role} for slug in roles],
        "fragments": fragments_for(role),
        "template_name": f"dashboards/home/{role or 'none'}.html",
    }
    if role is None:
        return context | no_role_home(user)
    if role not in roles:  # the view checks first; this keeps the selector safe on its own
        raise RoleNotHeld(role)
    return context | BUILDERS[role](user)


def url_or_none(name: str, *args) -> str | None:
    """reverse(), or None while the page's app is not installed yet."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def fragments_for(role: str | None) -> list[dict]:
    return [
        {"url": url_or_none(name), "name": name, "title": title, "placeholder": text}
        for name, title, text in FRAGMENTS.get(role or "", ())
    ]


# --- Shared widgets ------------------------------------------------------------------------------


def _from_ms(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def my_jobs(user, limit: int = 5) -> list[Job]:
    """The newest jobs `user` started (one query)."""
    return list(jobs_visible_to(user).filter(requested_by=user).order_by("-created_at")[:limit])


# --- Data scientist ------------------------------------------------------------------------------


def scientist_home(user) -> dict:
    """Recent and followed datasets, recent experiments, the user's own recent runs, their
    access requests and jobs."""
    visible = catalog.visible_datasets(user).select_related("owner", "current_version")
    experiments = list(
        tracking.visible_experiments(user, include_deleted=False)
        .select_related("owner")
        .order_by("-last_update_time", "-pk")[:LIST_SIZE]
    )
    for experiment in experiments:
        experiment.updated_at = _from_ms(experiment.last_update_time)
    runs = list(
        tracking.visible_runs(user)
        .filter(user=user, lifecycle_stage=Lifecycle.ACTIVE)
        .select_related("experiment")
        .order_by("-start_time", "-id")[:LIST_SIZE]
    )
    for run in runs:
        run.started_at = _from_ms(run.start_time)
    requests = catalog.access_requests_of(user)
    return {
        "recent_datasets": list(visible.order_by("-updated_at", "-pk")[:LIST_SIZE]),
        "followed_datasets": list(visible.filter(followers=user).order_by("name")[:8]),
        "recent_experiments": experiments,
        "recent_runs": runs,
        "my_access_requests": list(requests.order_by("-created_at", "-pk")[:LIST_SIZE]),
        "my_access_counts": _counts_by(requests, "status", AccessRequest.Status),
        "my_jobs": my_jobs(user),
    }


def _counts_by(queryset, field: str, choices) -> list[dict]:
    """`[{value, label, n}]` for each choice with at least one row, in the choices' order (one
    grouped query)."""
    found = {row[field]: row["n"] for row in queryset.order_by().values(field).annotate(n=Count("pk"))}
    return [{"value": value, "label": label, "n": found[value]} for value, label in choices.choices if found.get(value)]


# --- ML engineer ---------------------------------------------------------------------------------


def engineer_home(user) -> dict:
    """The models the user may see (their own first) with the completeness of their newest
    version's card, and their deployment requests by state."""
    # The eight to show are chosen on indexed columns alone; only they get their newest
    # version looked up (an aggregate over every visible model would grow with the registry).
    chosen = list(
        registry.visible_models(user)
        .annotate(mine=Case(When(owner=user, then=Value(1)), default=Value(0), output_field=IntegerField()))
        .order_by("-mine", "-last_updated_timestamp", "-pk")
        .values_list("pk", flat=True)[:8]
    )
    newest_live = ModelVersion.objects.filter(registered_model=OuterRef("pk"), is_deleted=False).order_by("-version")
    found = RegisteredModel.objects.filter(pk__in=chosen).annotate(
        newest_version_id=Subquery(newest_live.values("pk")[:1])
    )
    by_id = {model.pk: model for model in found}
    models = [by_id[pk] for pk in chosen if pk in by_id]
    newest = registry_pages.newest_versions_by_model(models)
    rows = []
    for model in models:
        version = newest.get(model.pk)
        score, missing = (None, [])
        if version is not None:
            score, missing = registry_pages.completeness_of(version)
        rows.append(
            {
                "model": model,
                "newest": version,
                "score": score,
                "missing": [cards.SECTIONS[key] for key in missing],
                "mine": model.owner_id == user.pk,
                "updated_at": _from_ms(model.last_updated_timestamp),
            }
        )
    mine = deployments.visible_requests(user).filter(requester=user)
    return {
        "model_rows": rows,
        "request_counts": _counts_by(mine, "state", DeploymentRequest.State),
        "my_requests": list(
            mine.select_related("model_version__registered_model", "environment").order_by("-created_at", "-pk")[
                :LIST_SIZE
            ]
        ),
        "my_jobs": my_jobs(user),
    }


# --- Approver ------------------------------------------------------------------------------------


def approver_home(user) -> dict:
    """Deployment requests waiting for the user's decision, those they decided lately, and
    dataset access requests waiting for them."""
    inbox = deployments.inbox(user)
    decided = (
        Approval.objects.filter(approver=user, request__in=deployments.visible_requests(user).values("pk"))
        .select_related("request__model_version__registered_model", "request__environment")
        .order_by("-created_at", "-pk")[:LIST_SIZE]
    )
    access = catalog.access_inbox(user)
    return {
        "inbox": list(inbox[:8]),
        "inbox_count": inbox.count(),
        "recently_decided": list(decided),
        "access_inbox": list(access.order_by("created_at", "pk")[:LIST_SIZE]),
        "access_inbox_count": access.count(),
    }


# --- Operations ----------------------------------------------------------------------------------


def ops_home(user) -> dict:
    """Live endpoints (health itself comes from monitoring's fragment), approved requests
    waiting to be pushed out, and the job queue: counts, running jobs and latest failures."""
    live = deployments.visible_endpoints(user).filter(state=Endpoint.State.LIVE)
    jobs = jobs_visible_to(user)
    return {
        "live_endpoints": list(
            live.select_related("environment", "current_version__registered_model", "canary_version").order_by(
                "environment__display_order", "environment__name", "name"
            )[:8]
        ),
        "live_endpoint_count": live.count(),
        "ready_to_deploy": list(
            deployments.visible_requests(user)
            .filter(state=DeploymentRequest.State.APPROVED)
            .select_related("model_version__registered_model", "environment")
            .order_by("decided_at", "pk")[:LIST_SIZE]
        ),
        "job_counts": status_counts(user),
        "running_jobs": list(jobs.filter(status=Job.Status.RUNNING).order_by("-started_at", "-created_at")[:LIST_SIZE]),
        "failed_jobs": list(jobs.filter(status=Job.Status.FAILED).order_by("-finished_at", "-created_at")[:LIST_SIZE]),
    }


# --- Business owner ------------------------------------------------------------------------------


def owner_home(user) -> dict:
    """Portfolio KPIs come from the value app's fragment; next to them, the models live in
    production that the user may see."""
    live = deployments.visible_endpoints(user).filter(state=Endpoint.State.LIVE)
    return {
        "live_endpoints": list(
            live.select_related("environment", "current_version__registered_model").order_by("name")[:8]
        ),
        "live_endpoint_count": live.count(),
        "portfolio_url": url_or_none("value:portfolio"),
    }


# --- Platform admin ------------------------------------------------------------------------------


def admin_home(user) -> dict:
    """People (newest, dormant, deactivated), teams, recent permission changes and the audit
    log. Everything is empty for a user who is not a platform admin."""
    if not is_platform_admin(user):
        return {"people": None, "teams": [], "permission_changes": [], "recent_audit": []}
    dormant = Q(is_active=True) & (Q(last_login__isnull=True) | Q(last_login__lt=timezone.now() - DORMANT_AFTER))
    people = User.objects.aggregate(
        total=Count("pk"),
        deactivated=Count("pk", filter=Q(is_active=False)),
        dormant=Count("pk", filter=dormant),
    )
    # Groups also back teams, so "no role" is "in none of the role groups", not "in no group".
    people["without_role"] = User.objects.filter(is_active=True).exclude(groups__name__in=ALL_ROLES).count()
    teams = teams_with_counts()
    events = events_for_log(user)  # empty for whoever may not read the audit log
    return {
        "people": people,
        "recent_users": list(User.objects.prefetch_related("groups").order_by("-date_joined", "-pk")[:LIST_SIZE]),
        "dormant_users": list(User.objects.filter(dormant).order_by("last_login", "username")[:LIST_SIZE]),
        "teams": list(teams.order_by("name")[:8]),
        "team_count": Team.objects.count(),
        "permission_changes": list(events.filter(action__in=PERMISSION_ACTIONS)[:8]),
        "recent_audit": list(events[:8]),
        "user_admin_url": url_or_none("admin:accounts_user_changelist") if user.is_staff else None,
    }


# --- No role yet ---------------------------------------------------------------------------------


def no_role_home(user) -> dict:
    """For a signed-in user without a role: who can give them one, and their teams."""
    return {
        "admins": list(platform_admins().order_by("username")[:5]),
        "teams": list(teams_of(user)),
    }


BUILDERS = {
    "scientist": scientist_home,
    "engineer": engineer_home,
    "approver": approver_home,
    "ops": ops_home,
    "owner": owner_home,
    "admin": admin_home,
}
