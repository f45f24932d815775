from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import views as core_views
from apps.dashboards import views as dashboard_views
from apps.tracking import artifacts_api, mlflow_api

admin.site.site_header = "Causeway administration"
admin.site.site_title = "Causeway admin"

urlpatterns = [
    path("", dashboard_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", include("apps.monitoring.metrics_urls")),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/", include("apps.accounts.urls")),
    path("jobs/", include("apps.jobs.urls")),
    path("audit/", include("apps.audit.urls")),
    path("catalog/", include("apps.catalog.urls")),
    path("lineage/", include("apps.lineage.urls")),
    path("experiments/", include("apps.tracking.urls")),
    path("models/", include("apps.registry.urls")),
    path("deployments/", include("apps.deployments.urls")),
    path("serve/", include("apps.deployments.serving.urls")),
    path("monitoring/", include("apps.monitoring.urls")),
    path("alerts/", include("apps.alerting.urls")),
    path("use-cases/", include("apps.value.urls")),
    # The MLflow tracking server API (stock mlflow client: MLFLOW_TRACKING_URI=<this host>).
    path("api/2.0/mlflow/<path:endpoint>", mlflow_api.dispatch, name="mlflow-api"),
    path("ajax-api/2.0/mlflow/<path:endpoint>", mlflow_api.dispatch, name="mlflow-ajax-api"),
    path("api/3.0/mlflow/server-info", mlflow_api.server_info, name="mlflow-server-info"),
    path("api/3.0/mlflow/<path:endpoint>", mlflow_api.dispatch, name="mlflow-api-3"),
    path("api/2.0/mlflow-artifacts/artifacts", artifacts_api.artifact, name="mlflow-artifacts-list"),
    path("api/2.0/mlflow-artifacts/artifacts/<path:path>", artifacts_api.artifact, name="mlflow-artifacts"),
    path("api/v1/", include(("config.api_urls", "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

handler400 = "apps.core.views.bad_request"
handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.page_not_found"
handler500 = "apps.core.views.server_error"
