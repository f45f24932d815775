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
