from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "catalog"
    verbose_name = "Data catalog"

    def ready(self) -> None:
        from apps.audit.selectors import register_object_visibility
        from apps.catalog.selectors import can_view_dataset_id

        register_object_visibility("catalog.dataset", can_view_dataset_id)
