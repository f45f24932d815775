"""Who may do what with a registered model (and so with its versions, aliases and cards).
Pure functions over the user and the row; the queryset form of visibility is
selectors.visible_models (the two must agree).

- view: everyone when the model is organisation-wide; otherwise its owner, its team, admins
  and those it is shared with (guardian `view_registeredmodel`).
- change (new versions, tags, descriptions, aliases, stages, cards): insiders whose role may
  register versions, admins, and those it is shared with for change.
- manage (rename, delete the model or a version, visibility, team, shares): the owner, the
  team lead and admins, as MLflow asks MANAGE for deletes.
- request deployment: insiders whose role may request deployments, admins, and those granted
  `request_deployment_registeredmodel` on the model.
"""

from __future__ import annotations

from apps.accounts.roles import ROLE_PERMISSIONS
from apps.accounts.selectors import cached_team_ids, roles_of
from apps.accounts.selectors import is_platform_admin as is_admin
from apps.registry.models import RegisteredModel

__all__ = [
    "can_change",
    "can_manage",
    "can_request_deployment",
    "can_view",
    "is_admin",
    "is_insider",
    "may_create_models",
    "team_ids",
]


def team_ids(user) -> list[int]:
    """The user's team ids, cached on the user for the request."""
    return cached_team_ids(user)


def is_insider(user, model: RegisteredModel) -> bool:
    """Owner, team member or admin."""
    if not user.is_authenticated:
        return False
    return (
        is_admin(user) or model.owner_id == user.pk or (model.team_id is not None and model.team_id in team_ids(user))
    )


def can_view(user, model: RegisteredModel) -> bool:
    if not user.is_authenticated:
        return False
    if model.visibility == RegisteredModel.Visibility.ORGANISATION or is_insider(user, model):
        return True
    return user.has_perm("registry.view_registeredmodel", model)


def can_change(user, model: RegisteredModel) -> bool:
    if not user.is_authenticated:
        return False
    if is_admin(user):
        return True
    if is_insider(user, model) and _has_role_permission(user, "registry.add_modelversion"):
        return True
    return user.has_perm("registry.change_registeredmodel", model)


def can_manage(user, model: RegisteredModel) -> bool:
    if not user.is_authenticated:
        return False
    if is_admin(user) or model.owner_id == user.pk:
        return True
    return model.team_id is not None and model.team.lead_id == user.pk


def can_request_deployment(user, model: RegisteredModel) -> bool:
    if not can_view(user, model):
        return False
    if is_admin(user):
        return True
    if is_insider(user, model) and _has_role_permission(user, "deployments.add_deploymentrequest"):
        return True
    return user.has_perm("registry.request_deployment_registeredmodel", model)


def may_create_models(user) -> bool:
    """The role permission to register a new model."""
    return user.is_authenticated and (is_admin(user) or _has_role_permission(user, "registry.add_registeredmodel"))


def _has_role_permission(user, permission: str) -> bool:
    # From the user's roles first (one cached query) before Django's backends, as tracking does.
    if any(permission in ROLE_PERMISSIONS.get(role, ()) for role in roles_of(user)):
        return True
    return user.has_perm(permission)
