from django.urls import path

from apps.tracking import views

app_name = "tracking"

urlpatterns = [
    path("", views.experiment_list, name="experiment_list"),
    path("compare/", views.compare_runs, name="compare"),
    path("<int:experiment_id>/", views.experiment_detail, name="experiment"),
    path("<int:experiment_id>/settings/", views.experiment_settings, name="experiment_settings"),
    path("<int:experiment_id>/runs/<str:run_uuid>/", views.run_detail, name="run"),
    path("<int:experiment_id>/runs/<str:run_uuid>/charts/", views.run_charts, name="run_charts"),
    path("<int:experiment_id>/runs/<str:run_uuid>/artifacts/", views.run_artifacts, name="run_artifacts"),
    path(
        "<int:experiment_id>/runs/<str:run_uuid>/artifacts/preview/",
        views.run_artifact_preview,
        name="run_artifact_preview",
    ),
    path("<int:experiment_id>/runs/<str:run_uuid>/artifacts/raw/", views.run_artifact_raw, name="run_artifact_raw"),
]
