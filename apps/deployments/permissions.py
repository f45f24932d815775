"""Who may do what with deployments. Pure functions over the user and the rows (role and team
lookups are cached per request); the queryset forms are in selectors.py and must agree.

- request: whoever may request a deployment of the model (registry: insiders whose role may
  request deployments, admins, or those granted `request_deployment` on the model).
- approve / reject: members of a team or holders of a role one of the environment's approval
  rules names — never the requester unless the environment allows self-approval.
- deploy (push an approved request out): members of the environment's deployer team, admins,
  and — when the environment names no deployer team — the requester.
- operate an endpoint (roll back, retire): the same deployers, the endpoint's owner when no
  deployer team is named, and the Operations role (they run the live endpoints).
- see a request or endpoint: those who can see the model, the environment's approvers, the
  requester / owner and team, those granted invoke, Operations and admins.
- edit environment policies: platform admins (`deployments.change_environment`).
"""

from __future__ import annotations

from apps.accounts.roles import OPERATIONS, ROLE_PERMISSIONS
from apps.accounts.selectors import cached_team_ids, has_role, roles_of
from apps.accounts.selectors import is_platform_admin as is_admin
from apps.registry import permissions as registry_permissions

__all__ = [
    "can_deploy",
    "can_edit_policy",
    "can_invoke",
    "can_manage_endpoint",
    "can_operate_endpoint",
    "can_request",
    "can_view_endpoint",
    "can_view_request",
    "is_admin",
    "is_environment_approver",
    "is_ops",
]


def team_ids(user) -> list[int]:
    return cached_team_ids(user)


def is_ops(user) -> bool:
    return bool(user.is_authenticated and has_role(user, OPERATIONS))


def can_request(user, model_version) -> bool:
    """Whether `user` may ask to deploy this version."""
    if not user.is_authenticated or model_version.is_deleted:
        return False
    return registry_permissions.can_request_deployment(user, model_version.registered_model)


def matches_rule(user, rule) -> bool:
    if not user.is_authenticated:
        return False
    if rule.team_id is not None:
        return rule.team_id in team_ids(user)
    return rule.role in roles_of(user)


def is_environment_approver(user, environment) -> bool:
    """In a team or role one of the environment's approval rules names."""
    return any(matches_rule(user, rule) for rule in environment.approval_rules.all())


def can_deploy(user, request) -> bool:
    """Push an approved request out."""
    if not user.is_authenticated:
        return False
    if is_admin(user):
        return True
    environment = request.environment
    if environment.deployer_team_id is not None:
        return environment.deployer_team_id in team_ids(user)
    return request.requester_id == user.pk


def can_operate_endpoint(user, endpoint) -> bool:
    """Roll back or retire an endpoint."""
    if not user.is_authenticated:
        return False
    if is_admin(user) or is_ops(user):
        return True
    environment = endpoint.environment
    if environment.deployer_team_id is not None:
        return environment.deployer_team_id in team_ids(user)
    return endpoint.owner_id == user.pk


def can_manage_endpoint(user, endpoint) -> bool:
    """Grant or take back the permission to call it: the owner, the team lead and admins."""
    if not user.is_authenticated:
        return False
    if is_admin(user) or endpoint.owner_id == user.pk:
        return True
    return endpoint.team_id is not None and endpoint.team.lead_id == user.pk


def can_edit_policy(user) -> bool:
    return bool(
        user.is_authenticated and (is_admin(user) or _has_role_permission(user, "deployments.change_environment"))
    )


def can_view_request(user, request) -> bool:
    if not user.is_authenticated:
        return False
    if is_admin(user) or is_ops(user) or request.requester_id == user.pk:
        return True
    if registry_permissions.can_view(user, request.model_version.registered_model):
        return True
    return is_environment_approver(user, request.environment)


def can_view_endpoint(user, endpoint) -> bool:
    if not user.is_authenticated:
        return False
    if is_admin(user) or is_ops(user) or endpoint.owner_id == user.pk:
        return True
    if endpoint.team_id is not None and endpoint.team_id in team_ids(user):
        return True
    if endpoint.current_version_id and registry_permissions.can_view(user, endpoint.current_version.registered_model):
        return True
    return is_environment_approver(user, endpoint.environment) or user.has_perm("deployments.invoke_endpoint", endpoint)


def can_invoke(user, endpoint) -> bool:
    """Call a live endpoint: its owner, its team, admins and those granted `invoke_endpoint`."""
    if not user.is_authenticated or endpoint.state != "live":
        return False
    if is_admin(user) or endpoint.owner_id == user.pk:
        return True
    if endpoint.team_id is not None and endpoint.team_id in team_ids(user):
        return True
    return user.has_perm("deployments.invoke_endpoint", endpoint)


def _has_role_permission(user, permission: str) -> bool:
    if any(permission in ROLE_PERMISSIONS.get(role, ()) for role in roles_of(user)):
        return True
    return user.has_perm(permission)
