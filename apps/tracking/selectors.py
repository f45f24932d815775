"""Every read of experiments and runs, filtered by what the user may see. Visibility is one
indexed query: owner / team / organisation-wide columns plus direct-FK guardian shares, the same
shape as the catalog's."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.tracking import permissions
from apps.tracking.models import (
    Experiment,
    ExperimentGroupObjectPermission,
    ExperimentUserObjectPermission,
    Lifecycle,
    Run,
)


def visible_experiments(user, *, include_deleted: bool = True) -> QuerySet[Experiment]:
    """Experiments `user` knows exist (deleted ones too unless asked otherwise: MLflow's API
    answers for them and the UI shows them in a trash view)."""
    if not user.is_authenticated:
        return Experiment.objects.none()
    queryset = Experiment.objects.all()
    if not include_deleted:
        queryset = queryset.filter(lifecycle_stage=Lifecycle.ACTIVE)
    if permissions.is_admin(user):
        return queryset
    shared_to_user = ExperimentUserObjectPermission.objects.filter(
        user=user, permission__codename="view_experiment"
    ).values("content_object_id")
    shared_to_groups = ExperimentGroupObjectPermission.objects.filter(
        group__user=user, permission__codename="view_experiment"
    ).values("content_object_id")
    return queryset.filter(
        Q(visibility=Experiment.Visibility.ORGANISATION)
        | Q(owner=user)
        | Q(team_id__in=permissions._team_ids(user))
        | Q(pk__in=shared_to_user)
        | Q(pk__in=shared_to_groups)
    )


def visible_runs(user) -> QuerySet[Run]:
    return Run.objects.filter(experiment__in=visible_experiments(user).values("pk"))


def experiment_for(user, experiment_id: int | str) -> Experiment | None:
    if not str(experiment_id).isdigit():
        return None
    return visible_experiments(user).select_related("owner", "team").filter(pk=int(experiment_id)).first()


def experiment_by_name(user, name: str) -> Experiment | None:
    return visible_experiments(user).select_related("owner", "team").filter(name=name).first()


def run_for(user, run_uuid: str) -> Run | None:
    """The run with its experiment, or None when it does not exist or is hidden from `user`."""
    if not run_uuid or len(run_uuid) > 32:
        return None
    run = Run.objects.select_related("experiment", "experiment__team", "user").filter(run_uuid=run_uuid).first()
    if run is None or not permissions.can_view(user, run.experiment):
        return None
    return run


def can_view_experiment_id(user, object_id: str) -> bool:
    """For the audit history pages (registered in TrackingConfig.ready)."""
    return str(object_id).isdigit() and visible_experiments(user).filter(pk=int(object_id)).exists()
