from django.contrib import admin

from apps.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: history is never edited, not even by superusers."""

    list_display = ("sequence", "timestamp", "actor_username", "action", "object_type", "object_label")
    list_filter = ("action", "object_type")
    search_fields = ("actor_username", "object_label", "object_id", "request_id")
    ordering = ("-sequence",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
