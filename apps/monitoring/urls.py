from django.urls import path

from apps.monitoring import views

app_name = "monitoring"

urlpatterns: list = [
    path("", views.ops, name="ops"),
    path("health/", views.health_fragment, name="health_fragment"),
    path("home-widget/", views.home_widget, name="home_widget"),
    path("endpoints/<slug:name>/", views.endpoint_monitoring, name="endpoint"),
    path("endpoints/<slug:name>/settings/", views.endpoint_settings, name="endpoint_settings"),
    path("endpoints/<slug:name>/card/", views.endpoint_fragment, name="endpoint_fragment"),
    path("endpoints/<slug:name>/drift/<int:report_id>/", views.drift_report, name="drift_report"),
]
