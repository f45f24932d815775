from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "apps.deployments"
    label = "deployments"
    verbose_name = "Deployments"

    def ready(self) -> None:
        from apps.audit.selectors import register_object_visibility
        from apps.deployments.selectors import can_view_endpoint_id, can_view_environment_id, can_view_request_id

        register_object_visibility("deployments.deploymentrequest", can_view_request_id)
        register_object_visibility("deployments.endpoint", can_view_endpoint_id)
        register_object_visibility("deployments.environment", can_view_environment_id)
