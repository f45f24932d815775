from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "apps.alerting"
    label = "alerting"
    verbose_name = "Alerting"

    def ready(self) -> None:
        from apps.alerting.selectors import can_view_alert_id, can_view_rule_id, can_view_silence_id
        from apps.audit.selectors import register_object_visibility

        register_object_visibility("alerting.alert", can_view_alert_id)
        register_object_visibility("alerting.alertrule", can_view_rule_id)
        register_object_visibility("alerting.silence", can_view_silence_id)
