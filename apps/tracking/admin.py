from django.contrib import admin

from apps.accounts.guarded_admin import GovernedObjectAdmin
from apps.tracking.models import Experiment


@admin.register(Experiment)
class ExperimentAdmin(GovernedObjectAdmin):
    """Object permissions of experiments (guardian), for platform admins; see GovernedObjectAdmin."""

    list_display = ("name", "owner", "team", "visibility", "lifecycle_stage")
    list_filter = ("visibility", "lifecycle_stage")
    search_fields = ("name",)
    list_select_related = ("owner", "team")
