"""Who may do what with a use case. Pure functions over the user and the row (role and team
lookups cached per request); the queryset form of visibility is selectors.visible_use_cases
(the two must agree).

- view: everyone when the use case is organisation-wide; otherwise its owner, its team,
  admins and those it is shared with (guardian `view_usecase`, to a user or a team).
- change (details, stage, links, cost and value entries, imports): the owner, team members,
  admins and those it is shared with for change (`change_usecase`).
- manage (visibility, team, owner, shares): the owner, the team lead and admins.
- create: the Business owners role (`value.add_usecase`) and admins.
"""

from __future__ import annotations

from apps.accounts.roles import ROLE_PERMISSIONS
from apps.accounts.selectors import cached_team_ids, roles_of
from apps.accounts.selectors import is_platform_admin as is_admin

__all__ = ["can_change", "can_manage", "can_view", "is_admin", "is_insider", "may_create", "team_ids"]


def team_ids(user) -> list[int]:
    return cached_team_ids(user)


def is_insider(user, use_case) -> bool:
    """Owner, team member or admin."""
    if not user.is_authenticated:
        return False
    return (
        is_admin(user)
        or use_case.owner_id == user.pk
        or (use_case.team_id is not None and use_case.team_id in team_ids(user))
    )


def can_view(user, use_case) -> bool:
    if not user.is_authenticated:
        return False
    if use_case.visibility == "organisation" or is_insider(user, use_case):
        return True
    return user.has_perm("value.view_usecase", use_case) or user.has_perm("value.change_usecase", use_case)


def can_change(user, use_case) -> bool:
    if not user.is_authenticated:
        return False
    if is_insider(user, use_case):
        return True
    return user.has_perm("value.change_usecase", use_case)


def can_manage(user, use_case) -> bool:
    if not user.is_authenticated:
        return False
    if is_admin(user) or use_case.owner_id == user.pk:
        return True
    return use_case.team_id is not None and use_case.team is not None and use_case.team.lead_id == user.pk


def may_create(user) -> bool:
    """The role permission to start a use case."""
    if not user.is_authenticated:
        return False
    if is_admin(user) or any("value.add_usecase" in ROLE_PERMISSIONS.get(role, ()) for role in roles_of(user)):
        return True
    return user.has_perm("value.add_usecase")
