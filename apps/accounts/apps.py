from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Permissions of apps that land later only exist once their own post_migrate has run,
        # so the role groups are brought up to date after each app migrates. This is
        # infrastructure bookkeeping (like Django's create_permissions), not business logic.
        post_migrate.connect(_sync_roles_after_migrate, dispatch_uid="causeway-sync-roles")
        from apps.accounts import schema  # noqa: F401  (registers the OpenAPI auth schemes)


def _sync_roles_after_migrate(sender, using: str = "default", **kwargs) -> None:
    from apps.accounts.roles import sync_role_permissions

    sync_role_permissions(using=using)
