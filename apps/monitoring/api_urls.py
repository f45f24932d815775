"""This app's routes under /api/v1/ (included by config/api_urls.py, names in the "api" namespace)."""

from django.urls import path

from apps.monitoring import api

urlpatterns: list = [
    path("monitoring/endpoints/<slug:name>/outcomes", api.OutcomeView.as_view(), name="monitoring-outcomes"),
    path("monitoring/endpoints/<slug:name>", api.MonitoringSummaryView.as_view(), name="monitoring-endpoint"),
    path(
        "monitoring/endpoints/<slug:name>/drift-reports",
        api.DriftReportListView.as_view(),
        name="monitoring-drift-reports",
    ),
    path(
        "monitoring/endpoints/<slug:name>/drift-reports/<int:report_id>",
        api.DriftReportDetailView.as_view(),
        name="monitoring-drift-report",
    ),
]
