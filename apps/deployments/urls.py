from django.urls import path
from django.views.generic import RedirectView

from apps.deployments import views

app_name = "deployments"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="deployments:request_list"), name="index"),
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_new, name="request_new"),
    path("requests/<int:pk>/", views.request_detail, name="request"),
    path("requests/<int:pk>/decide/", views.request_decide, name="request_decide"),
    path("requests/<int:pk>/withdraw/", views.request_withdraw, name="request_withdraw"),
    path("requests/<int:pk>/submit/", views.request_submit, name="request_submit"),
    path("requests/<int:pk>/deploy/", views.request_deploy, name="request_deploy"),
    path("requests/<int:pk>/checks/", views.request_rerun_checks, name="request_rerun_checks"),
    path("inbox/", views.inbox, name="inbox"),
    path("endpoints/", views.endpoint_list, name="endpoint_list"),
    path("endpoints/<slug:name>/", views.endpoint_detail, name="endpoint"),
    path("endpoints/<slug:name>/rollback/", views.endpoint_rollback, name="endpoint_rollback"),
    path("endpoints/<slug:name>/retire/", views.endpoint_retire, name="endpoint_retire"),
    path("environments/", views.environment_list, name="environment_list"),
    path("environments/<slug:name>/edit/", views.environment_edit, name="environment_edit"),
]
