from django.urls import path

from apps.catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new/", views.dataset_create, name="create"),
    path("access/", views.access_inbox, name="access_inbox"),
    path("access/<int:request_id>/decide/", views.access_decide, name="access_decide"),
    path("datasets/<slug:slug>/", views.dataset_detail, name="dataset"),
    path("datasets/<slug:slug>/versions/", views.version_add, name="version_add"),
    path("datasets/<slug:slug>/diff/", views.version_diff, name="version_diff"),
    path("datasets/<slug:slug>/versions/<int:number>/download/", views.version_download, name="version_download"),
    path("datasets/<slug:slug>/follow/", views.follow, name="follow"),
    path("datasets/<slug:slug>/columns/<int:column_id>/", views.column_update, name="column_update"),
    path("datasets/<slug:slug>/access/", views.access_request_create, name="access_request"),
]
