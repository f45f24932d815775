from django.contrib import admin

from apps.accounts.guarded_admin import GovernedObjectAdmin
from apps.deployments.models import Endpoint, Environment


@admin.register(Environment)
class EnvironmentAdmin(GovernedObjectAdmin):
    """Environments are shared through their approval rules and deployer team (Share dialog,
    policy page); guardian's pages are offered for completeness. See GovernedObjectAdmin."""

    list_display = ("name", "deployer_team", "requires_step_up", "allow_self_approval")
    search_fields = ("name",)


@admin.register(Endpoint)
class EndpointAdmin(GovernedObjectAdmin):
    """Invoke grants of endpoints (guardian), for platform admins; see GovernedObjectAdmin."""

    list_display = ("name", "environment", "owner", "team", "state")
    list_filter = ("state", "environment")
    search_fields = ("name",)
    list_select_related = ("environment", "owner", "team")
