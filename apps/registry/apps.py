from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "apps.registry"
    label = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from apps.audit.selectors import register_object_visibility
        from apps.registry import mlflow_api  # noqa: F401  (registers the registry's MLflow routes)
        from apps.registry.selectors import (
            can_read_version_artifact,
            can_view_card_id,
            can_view_model_id,
            can_view_version_id,
        )
        from apps.tracking.permissions import register_artifact_reader

        register_object_visibility("registry.registeredmodel", can_view_model_id)
        register_object_visibility("registry.modelversion", can_view_version_id)
        register_object_visibility("registry.modelcard", can_view_card_id)
        register_artifact_reader(can_read_version_artifact)
