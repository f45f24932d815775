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
        _register_sharing()


def _register_sharing() -> None:
    # The Share dialog (apps.accounts.sharing) changes shares through the registry's services.
    from django.urls import reverse

    from apps.accounts.sharing import Level, owned_shareable, register
    from apps.registry import permissions, selectors, services
    from apps.registry.models import RegisteredModel

    def share(*, obj, by, level, user, team, grant) -> None:
        if grant:
            services.share_model_at_level(by=by, model=obj, level=level.key, user=user, team=team)
        else:  # the registry takes every share of a grantee back at once
            services.unshare_model(by=by, model=obj, user=user, team=team)

    register(
        owned_shareable(
            kind="model",
            model=RegisteredModel,
            label="registered model",
            levels=(
                Level("view", "view", "view_registeredmodel"),
                Level("change", "change (versions, cards, aliases)", "change_registeredmodel"),
                Level("request_deployment", "request deployment", "request_deployment_registeredmodel"),
            ),
            can_manage=permissions.can_manage,
            share=share,
            revoke=lambda obj, by, user, team: services.unshare_model(by=by, model=obj, user=user, team=team),
            visible=selectors.visible_models,
            url=lambda obj: reverse("registry:model", args=[obj.name]),
        )
    )
