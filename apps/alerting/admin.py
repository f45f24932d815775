from django.contrib import admin

from apps.alerting.models import Alert, AlertRule, Silence, WebhookChannel, WebhookDelivery
from apps.core.admin import ReadOnlyAdmin


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "endpoint", "environment", "comparison", "threshold", "severity", "enabled"]
    list_filter = ["kind", "severity", "enabled"]
    raw_id_fields = ["endpoint", "owner"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["pk", "rule", "subject_label", "state", "severity", "opened_at", "resolved_at"]
    list_filter = ["state", "severity"]
    raw_id_fields = ["rule", "endpoint", "acknowledged_by", "resolved_by", "silenced_by"]


@admin.register(Silence)
class SilenceAdmin(ReadOnlyAdmin):
    list_display = ["pk", "endpoint", "environment", "rule", "starts_at", "ends_at", "created_by"]
    raw_id_fields = ["endpoint", "rule", "created_by", "ended_by"]


@admin.register(WebhookChannel)
class WebhookChannelAdmin(ReadOnlyAdmin):
    list_display = ["name", "url", "format", "team", "endpoint", "enabled"]
    exclude = ["secret"]
    raw_id_fields = ["endpoint", "created_by"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["pk", "channel", "alert", "event", "status", "attempts", "response_status", "created_at"]
    list_filter = ["status", "event"]
    raw_id_fields = ["channel", "alert"]
