from django.contrib import admin

from apps.accounts.guarded_admin import GovernedObjectAdmin
from apps.catalog.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(GovernedObjectAdmin):
    """Object permissions of datasets (guardian), for platform admins; see GovernedObjectAdmin."""

    list_display = ("name", "owner", "team", "visibility", "classification", "updated_at")
    list_filter = ("visibility", "classification")
    search_fields = ("name", "slug")
    list_select_related = ("owner", "team")
