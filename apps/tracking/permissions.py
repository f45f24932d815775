"""Who may do what with an experiment (and so with its runs, metrics and artifacts). Pure
functions over the user and the row; the queryset form of visibility is
selectors.visible_experiments (the two must agree)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apps.accounts.roles import ROLE_PERMISSIONS
from apps.accounts.selectors import cached_team_ids, roles_of
from apps.accounts.selectors import is_platform_admin as is_admin
from apps.tracking.models import DEFAULT_EXPERIMENT_ID, Experiment


def is_insider(user, experiment: Experiment) -> bool:
    """Owner, team member or admin."""
    if not user.is_authenticated:
        return False
    return (
        is_admin(user)
        or experiment.owner_id == user.pk
        or (experiment.team_id is not None and experiment.team_id in cached_team_ids(user))
    )


def can_view(user, experiment: Experiment) -> bool:
    if not user.is_authenticated:
        return False
    if experiment.visibility == Experiment.Visibility.ORGANISATION or is_insider(user, experiment):
        return True
    return user.has_perm("tracking.view_experiment", experiment)


def can_log(user, experiment: Experiment) -> bool:
    """Create runs and log to them: insiders with a role that may log runs, and those the
    experiment is shared with for change. Everyone else who can see it reads only."""
    if not user.is_authenticated:
        return False
    if is_admin(user):
        return True
    if (is_insider(user, experiment) or experiment.pk == DEFAULT_EXPERIMENT_ID) and may_log_runs(user):
        return True
    return user.has_perm("tracking.change_experiment", experiment)


def may_log_runs(user) -> bool:
    """The role permission to log runs. Read from the user's roles (one query, cached for the
    request) before asking Django's backends, which load every permission of the user: this
    sits on the path of every `log_metric` call."""
    if any("tracking.add_run" in ROLE_PERMISSIONS.get(role, ()) for role in roles_of(user)):
        return True
    return user.has_perm("tracking.add_run")


def can_manage(user, experiment: Experiment) -> bool:
    """Rename, describe, delete, restore and share: the owner, the team lead and admins."""
    if not user.is_authenticated:
        return False
    if is_admin(user) or experiment.owner_id == user.pk:
        return True
    return experiment.team_id is not None and experiment.team.lead_id == user.pk


# Checks other apps register (downstream of tracking, so tracking cannot import them): each says
# whether `user` may read the artifact stored under `key` although its experiment is hidden from
# them, e.g. the files of a model version they may see (RegistryConfig.ready).
ARTIFACT_READERS: list[Callable[[Any, str], bool]] = []


def register_artifact_reader(check: Callable[[Any, str], bool]) -> None:
    if check not in ARTIFACT_READERS:
        ARTIFACT_READERS.append(check)


def may_read_artifact_elsewhere(user, key: str) -> bool:
    return user.is_authenticated and any(check(user, key) for check in ARTIFACT_READERS)
