"""Who may do what with a dataset. Pure functions over the user and the row; the queryset
form of visibility lives in selectors.visible_datasets (the two must agree)."""

from __future__ import annotations

from apps.accounts.selectors import is_platform_admin as is_admin
from apps.accounts.selectors import team_ids_of
from apps.catalog.models import AccessRequest, Dataset


def is_insider(user, dataset: Dataset) -> bool:
    """Owner, steward, team member or admin: sees everything about the dataset."""
    if not user.is_authenticated:
        return False
    return (
        is_admin(user)
        or dataset.owner_id == user.pk
        or dataset.steward_id == user.pk
        or (dataset.team_id is not None and dataset.team_id in team_ids_of(user))
    )


def can_view(user, dataset: Dataset) -> bool:
    if not user.is_authenticated:
        return False
    if dataset.visibility == Dataset.Visibility.ORGANISATION or is_insider(user, dataset):
        return True
    return user.has_perm("catalog.view_dataset", dataset)


def can_change(user, dataset: Dataset) -> bool:
    if not user.is_authenticated:
        return False
    if is_admin(user) or dataset.owner_id == user.pk or dataset.steward_id == user.pk:
        return True
    if dataset.team_id is not None and dataset.team.lead_id == user.pk:
        return True
    return user.has_perm("catalog.change_dataset", dataset)


def can_see_content(user, dataset: Dataset) -> bool:
    """Samples, value-level profiles and downloads. Restricted classes need an approved,
    unexpired access request unless the user is an insider."""
    if not can_view(user, dataset):
        return False
    if not dataset.is_restricted or is_insider(user, dataset):
        return True
    if user.has_perm("catalog.view_dataset_content", dataset):
        return True
    return any(
        request.is_active
        for request in AccessRequest.objects.filter(
            dataset=dataset, requester=user, status=AccessRequest.Status.APPROVED
        )
    )


def can_decide_access(user, dataset: Dataset) -> bool:
    """The owner, the data steward and platform admins approve or reject access requests."""
    return bool(
        user.is_authenticated and (is_admin(user) or dataset.owner_id == user.pk or dataset.steward_id == user.pk)
    )
