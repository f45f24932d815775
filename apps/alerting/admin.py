from django.contrib import admin

from apps.alerting.models import Alert, AlertRule, Silence, WebhookChannel, WebhookDelivery


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Every alerting write goes through services (permission check + audit); the admin only reads."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(_ReadOnlyAdmin):
    list_display = ["name", "kind", "endpoint", "environment", "comparison", "threshold", "severity", "enabled"]
    list_filter = ["kind", "severity", "enabled"]
    raw_id_fields = ["endpoint", "owner"]


@admin.register(Alert)
class AlertAdmin(_ReadOnlyAdmin):
    list_display = ["pk", "rule", "subject_label", "state", "severity", "opened_at", "resolved_at"]
    list_filter = ["state", "severity"]
    raw_id_fields = ["rule", "endpoint", "acknowledged_by", "resolved_by", "silenced_by"]


@admin.register(Silence)
class SilenceAdmin(_ReadOnlyAdmin):
    list_display = ["pk", "endpoint", "environment", "rule", "starts_at", "ends_at", "created_by"]
    raw_id_fields = ["endpoint", "rule", "created_by", "ended_by"]


@admin.register(WebhookChannel)
class WebhookChannelAdmin(_ReadOnlyAdmin):
    list_display = ["name", "url", "format", "team", "endpoint", "enabled"]
    exclude = ["secret"]
    raw_id_fields = ["endpoint", "created_by"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnlyAdmin):
    list_display = ["pk", "channel", "alert", "event", "status", "attempts", "response_status", "created_at"]
    list_filter = ["status", "event"]
    raw_id_fields = ["channel", "alert"]
