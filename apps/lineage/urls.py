from django.urls import path

from apps.lineage import views

app_name = "lineage"

urlpatterns = [
    path("datasets/<slug:slug>/", views.dataset_lineage, name="dataset"),
    path("runs/<str:run_uuid>/", views.run_lineage, name="run"),
    path("models/<str:name>/versions/<int:version>/", views.version_lineage, name="model_version"),
]
