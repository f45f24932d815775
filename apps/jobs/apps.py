from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "apps.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Import every app's tasks.py now, so each job kind is registered in the web process
        # too (Celery's own autodiscovery is lazy).
        autodiscover_modules("tasks")
