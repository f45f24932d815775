"""The six roles of DESIGN.md and the model-level permissions each role carries.

Roles say what *kinds* of thing a user may create or do; which objects they may see or
change is decided per object (owner, team, visibility, guardian shares).
Permissions of apps not installed yet are skipped and picked up after their migrate.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

SCIENTIST = "Data scientists"
ENGINEER = "ML engineers"
APPROVER = "Approvers"
OPERATIONS = "Operations"
BUSINESS_OWNER = "Business owners"
ADMIN = "Platform admins"

ALL_ROLES: tuple[str, ...] = (SCIENTIST, ENGINEER, APPROVER, OPERATIONS, BUSINESS_OWNER, ADMIN)

# Short names used in URLs, the demo data and the navigation.
ROLE_SLUGS: dict[str, str] = {
    SCIENTIST: "scientist",
    ENGINEER: "engineer",
    APPROVER: "approver",
    OPERATIONS: "ops",
    BUSINESS_OWNER: "owner",
    ADMIN: "admin",
}

# "app_label.codename" per role. Later issues add their models' permissions here.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    SCIENTIST: (
        "accounts.add_personalaccesstoken",
        "jobs.add_job",
        "catalog.add_dataset",
        "catalog.add_datasetversion",
        "catalog.add_accessrequest",
        "tracking.add_experiment",
        "tracking.add_run",
        "registry.add_registeredmodel",
        "registry.add_modelversion",
    ),
    ENGINEER: (
        "accounts.add_personalaccesstoken",
        "jobs.add_job",
        "catalog.add_dataset",
        "catalog.add_datasetversion",
        "catalog.add_accessrequest",
        "tracking.add_experiment",
        "tracking.add_run",
        "registry.add_registeredmodel",
        "registry.add_modelversion",
        "deployments.add_deploymentrequest",
    ),
    APPROVER: (
        "accounts.add_personalaccesstoken",
        "audit.view_auditevent",
        "deployments.add_approval",
        "catalog.change_accessrequest",
    ),
    OPERATIONS: (
        "accounts.add_personalaccesstoken",
        "jobs.view_job",
        "jobs.retry_job",
        "jobs.cancel_job",
        "alerting.change_alert",
        "alerting.add_alertrule",
    ),
    BUSINESS_OWNER: (
        "value.add_usecase",
        "value.add_costentry",
        "value.add_valueentry",
    ),
    ADMIN: (
        "accounts.add_personalaccesstoken",
        "accounts.add_team",
        "accounts.change_team",
        "accounts.view_user",
        "accounts.change_user",
        "audit.view_auditevent",
        "jobs.view_job",
        "jobs.retry_job",
        "jobs.cancel_job",
        "deployments.change_environment",
        "catalog.add_dataset",
        "catalog.add_datasetversion",
        "catalog.add_accessrequest",
        "tracking.add_experiment",
        "tracking.add_run",
        "registry.add_registeredmodel",
        "registry.add_modelversion",
    ),
}


def sync_role_permissions(using: str = "default") -> None:
    """Create the role groups if missing and give each exactly its listed permissions."""
    wanted = {perm for perms in ROLE_PERMISSIONS.values() for perm in perms}
    query = Q()
    for perm in wanted:
        app_label, codename = perm.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    available = {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.using(using).filter(query).select_related("content_type")
    }
    for role in ALL_ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.set([available[p] for p in ROLE_PERMISSIONS[role] if p in available])
