from django.contrib import admin

from apps.accounts.guarded_admin import GovernedObjectAdmin
from apps.registry.models import RegisteredModel


@admin.register(RegisteredModel)
class RegisteredModelAdmin(GovernedObjectAdmin):
    """Object permissions of registered models (guardian), for platform admins; see GovernedObjectAdmin."""

    list_display = ("name", "owner", "team", "visibility")
    list_filter = ("visibility",)
    search_fields = ("name",)
    list_select_related = ("owner", "team")
