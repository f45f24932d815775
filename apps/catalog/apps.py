from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "catalog"
    verbose_name = "Data catalog"

    def ready(self) -> None:
        from apps.audit.selectors import register_object_visibility
        from apps.catalog.selectors import can_view_dataset_id

        register_object_visibility("catalog.dataset", can_view_dataset_id)
        _register_sharing()


def _register_sharing() -> None:
    # The Share dialog (apps.accounts.sharing) changes shares through share_dataset only.
    from django.urls import reverse

    from apps.accounts.sharing import Level, owned_shareable, register
    from apps.catalog import permissions, selectors, services
    from apps.catalog.models import Dataset

    register(
        owned_shareable(
            kind="dataset",
            model=Dataset,
            levels=(
                Level("view", "view", "view_dataset"),
                Level("change", "change", "change_dataset", includes=("view",)),
                Level("content", "see restricted content", "view_dataset_content", includes=("view",)),
            ),
            related=("owner", "steward", "team__lead"),
            can_manage=permissions.can_change,
            share=lambda obj, by, level, user, team, grant: services.share_dataset(
                dataset=obj, by=by, permission=level.codename, user=user, team=team, grant=grant
            ),
            visible=selectors.visible_datasets,
            url=lambda obj: reverse("catalog:dataset", args=[obj.slug]),
            owner_fields=("owner", "steward"),
        )
    )
