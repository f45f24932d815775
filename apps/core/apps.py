from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Causeway core"

    def ready(self) -> None:
        from apps.core import lookups  # noqa: F401 — registers the `any` lookup on every field
