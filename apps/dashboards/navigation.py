"""The navigation bar: each role sees the sections it uses. Sections whose pages are not
installed yet are left out (their URL name does not resolve)."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from apps.accounts.selectors import role_slugs_of

EVERYONE = frozenset({"scientist", "engineer", "approver", "ops", "owner", "admin"})


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    icon: str
    roles: frozenset[str] = EVERYONE


NAV_ITEMS: tuple[NavItem, ...] = (
    NavItem(
        "Catalog", "catalog:list", "bi-database", frozenset({"scientist", "engineer", "approver", "owner", "admin"})
    ),
    NavItem("Experiments", "tracking:experiment_list", "bi-graph-up", frozenset({"scientist", "engineer", "admin"})),
    NavItem(
        "Models", "registry:model_list", "bi-box-seam", frozenset({"scientist", "engineer", "approver", "ops", "admin"})
    ),
    NavItem(
        "Deployments",
        "deployments:request_list",
        "bi-rocket-takeoff",
        frozenset({"engineer", "approver", "ops", "admin"}),
    ),
    NavItem("Approvals", "deployments:inbox", "bi-check2-square", frozenset({"approver", "admin"})),
    NavItem("Monitoring", "monitoring:ops", "bi-activity", frozenset({"ops", "engineer", "admin"})),
    NavItem("Alerts", "alerting:alert_list", "bi-bell", frozenset({"ops", "engineer", "admin"})),
    NavItem("Use cases", "value:portfolio", "bi-cash-coin", frozenset({"owner", "engineer", "admin"})),
    NavItem("Jobs", "jobs:list", "bi-list-task"),
    NavItem("Audit", "audit:log", "bi-journal-check", frozenset({"approver", "admin"})),
    NavItem("Teams", "accounts:team_list", "bi-people"),
    NavItem("Access", "accounts:manage_users", "bi-shield-lock", frozenset({"admin"})),
)


def items_for(user) -> list[dict]:
    if not user.is_authenticated:
        return []
    slugs = role_slugs_of(user)
    items = []
    for item in NAV_ITEMS:
        if not (item.roles & slugs) and not user.is_superuser:
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        items.append({"label": item.label, "url": url, "icon": item.icon})
    return items


def navigation(request) -> dict:
    """Template context processor."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    return {"nav_items": items_for(user), "nav_role_slugs": sorted(role_slugs_of(user))}
