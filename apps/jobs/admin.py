from django.contrib import admin

from apps.jobs.models import Job, JobLogEntry


class JobLogEntryInline(admin.TabularInline):
    model = JobLogEntry
    extra = 0
    readonly_fields = ("at", "level", "message")
    can_delete = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Read-only: retry and cancel go through the jobs page so they are audited."""

    list_display = ("id", "kind", "status", "progress", "requested_by", "created_at", "finished_at")
    list_filter = ("status", "kind")
    search_fields = ("id", "kind", "target_label")
    inlines = [JobLogEntryInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
