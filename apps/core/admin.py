"""Admin building blocks shared by the apps (this module registers no model)."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """An admin that only reads: the model's writes go through its app's services, which check
    permissions and audit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
