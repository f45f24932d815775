from django.apps import AppConfig


class ValueConfig(AppConfig):
    name = "apps.value"
    label = "value"
    verbose_name = "Business value"

    def ready(self) -> None:
        from apps.audit.selectors import register_object_visibility
        from apps.value import tasks  # noqa: F401  (registers the beat task)
        from apps.value.selectors import can_view_use_case_id

        register_object_visibility("value.usecase", can_view_use_case_id)
        _register_sharing()


def _register_sharing() -> None:
    # The Share dialog (apps.accounts.sharing): view / change shares to users and teams through
    # value.services.share_use_case, which checks who may manage and audits.
    try:
        from apps.accounts.sharing import Level, owned_shareable, register
    except ImportError:  # the dialog is not installed
        return
    from django.urls import reverse

    from apps.value import permissions, selectors, services
    from apps.value.models import UseCase

    register(
        owned_shareable(
            kind="usecase",
            model=UseCase,
            label="use case",
            levels=(Level("view", "view", "view_usecase"), Level("change", "change (brings view)", "change_usecase")),
            visible=selectors.visible_use_cases,
            can_manage=permissions.can_manage,
            share=lambda obj, by, level, user, team, grant: services.share_use_case(
                use_case=obj, grantee=user or team, level=level.key, by=by, grant=grant
            ),
            url=lambda obj: reverse("value:use_case", args=[obj.slug]),
        )
    )
