from django.apps import AppConfig


class ValueConfig(AppConfig):
    name = "apps.value"
    label = "value"
    verbose_name = "Business value"
