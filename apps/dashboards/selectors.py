"""What each role's home page shows, composed from other apps' selectors (reads only)."""

from __future__ import annotations

from apps.accounts.roles import ROLE_SLUGS
from apps.accounts.selectors import role_slugs_of, teams_of
from apps.audit.selectors import can_view_audit_log, events_for_log
from apps.catalog import selectors as catalog
from apps.jobs.selectors import jobs_visible_to, status_counts
from apps.tracking import selectors as tracking

# What each role's home will hold; sections appear as their issues land.
ROLE_HOME_INTRO: dict[str, str] = {
    "scientist": "Find data in the catalog, track experiments and compare runs.",
    "engineer": "Register models, write model cards and request deployments.",
    "approver": "Review deployment requests and access requests waiting for you.",
    "ops": "Watch live endpoints, jobs, drift and alerts.",
    "owner": "Follow the cost, value and ROI of your ML use cases.",
    "admin": "Manage teams, roles and permissions; read the audit log.",
}


def home_for(user) -> dict:
    slugs = role_slugs_of(user)
    ordered = [slug for slug in ROLE_SLUGS.values() if slug in slugs]
    context = {
        "role_sections": [{"slug": slug, "intro": ROLE_HOME_INTRO[slug]} for slug in ordered],
        "teams": list(teams_of(user)),
        "my_jobs": list(jobs_visible_to(user).filter(requested_by=user)[:5]),
        "job_counts": status_counts(user),
    }
    if slugs & {"scientist", "engineer", "admin"}:
        visible = catalog.visible_datasets(user).select_related("owner", "current_version")
        context["followed_datasets"] = list(visible.filter(followers=user).order_by("name")[:8])
        context["recent_datasets"] = list(visible.order_by("-updated_at")[:6])
        context["recent_experiments"] = list(
            tracking.visible_experiments(user, include_deleted=False).order_by("-last_update_time")[:6]
        )
    context["access_inbox_count"] = catalog.access_inbox(user).count()
    if can_view_audit_log(user):
        context["recent_audit"] = list(events_for_log(user)[:8])
    return context
