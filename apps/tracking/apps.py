from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "apps.tracking"
    label = "tracking"
    verbose_name = "Experiment tracking"

    def ready(self) -> None:
        from apps.audit.selectors import register_object_visibility
        from apps.tracking.selectors import can_view_experiment_id, can_view_run_id

        register_object_visibility("tracking.experiment", can_view_experiment_id)
        register_object_visibility("tracking.run", can_view_run_id)
        _register_sharing()


def _register_sharing() -> None:
    # The Share dialog (apps.accounts.sharing) changes shares through share_experiment only.
    from django.urls import reverse

    from apps.accounts.sharing import Level, owned_shareable, register
    from apps.tracking import permissions, selectors, services
    from apps.tracking.models import Experiment

    register(
        owned_shareable(
            kind="experiment",
            model=Experiment,
            levels=(
                Level("view", "view", "view_experiment"),
                Level("change", "change (log runs)", "change_experiment"),
            ),
            can_manage=permissions.can_manage,
            share=lambda obj, by, level, user, team, grant: services.share_experiment(
                by=by, experiment=obj, permission=level.codename, user=user, team=team, grant=grant
            ),
            visible=selectors.visible_experiments,
            url=lambda obj: reverse("tracking:experiment", args=[obj.pk]),
        )
    )
