"""The Django admin for the value app: use cases with their object permissions (guardian,
audited, like every governed model), and read-only views of entries, stage history and rates —
those change through the pages and services, which validate and audit."""

from django.contrib import admin

from apps.accounts.guarded_admin import GovernedObjectAdmin
from apps.accounts.selectors import is_platform_admin
from apps.core.admin import ReadOnlyAdmin
from apps.value.models import ComputeRate, CostEntry, StageChange, UseCase, ValueEntry


@admin.register(UseCase)
class UseCaseAdmin(GovernedObjectAdmin):
    """Object permissions of use cases (guardian), for platform admins; see GovernedObjectAdmin."""

    list_display = ("name", "stage", "owner", "team", "visibility", "currency")
    list_filter = ("stage", "visibility")
    search_fields = ("name", "slug")
    list_select_related = ("owner", "team")


class _ReadOnlyAdmin(ReadOnlyAdmin):
    """Entries, stage history and rates: read-only, and for platform admins only."""

    def has_module_permission(self, request) -> bool:
        return is_platform_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_platform_admin(request.user)


@admin.register(ComputeRate)
class ComputeRateAdmin(_ReadOnlyAdmin):
    list_display = ("environment", "endpoint_hour_rate", "job_hour_rate", "currency", "updated_at")


@admin.register(CostEntry)
class CostEntryAdmin(_ReadOnlyAdmin):
    list_display = ("use_case", "category", "period_start", "period_end", "amount", "currency", "source")
    list_filter = ("category", "source")
    list_select_related = ("use_case",)


@admin.register(ValueEntry)
class ValueEntryAdmin(_ReadOnlyAdmin):
    list_display = ("use_case", "method", "period_start", "period_end", "amount", "currency")
    list_filter = ("method",)
    list_select_related = ("use_case",)


@admin.register(StageChange)
class StageChangeAdmin(_ReadOnlyAdmin):
    list_display = ("use_case", "from_stage", "to_stage", "changed_by", "changed_at")
    list_select_related = ("use_case", "changed_by")
