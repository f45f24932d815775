from django.urls import path

from apps.lineage import views

app_name = "lineage"

urlpatterns = [
    path("datasets/<slug:slug>/", views.dataset_lineage, name="dataset"),
]
