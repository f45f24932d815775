"""`/metrics` (included at the root by config/urls.py)."""

from django.urls import path

from apps.monitoring import metrics

urlpatterns = [path("", metrics.metrics, name="metrics")]
