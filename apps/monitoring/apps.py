from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # Serving tells monitoring of every call through its observer hook: deployments never
        # imports monitoring.
        from apps.deployments.serving.observers import register_invocation_observer
        from apps.monitoring.telemetry import recorder

        register_invocation_observer(recorder.observe)
