"""Causeway's own REST API, /api/v1/. Each app contributes its viewsets here."""

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from apps.accounts.api import MeView, TeamViewSet, TokenViewSet
from apps.audit.api import AuditEventViewSet
from apps.catalog.api import AccessRequestViewSet, DatasetViewSet
from apps.catalog.lineage_api import LineageIngestView
from apps.core.api import api_not_found
from apps.jobs.api import JobViewSet
from apps.lineage.api import DatasetLineageView, ModelVersionLineageView, RunLineageView
from apps.registry.api import ModelCardHtmlView, ModelCardJsonView, ModelCardMarkdownView

router = DefaultRouter()
# No `.json` suffix twins: custom @action methods take no `format` argument, so `/jobs/<id>/cancel.json` was a 500.
router.include_format_suffixes = False
router.register("tokens", TokenViewSet, basename="token")
router.register("teams", TeamViewSet, basename="team")
router.register("jobs", JobViewSet, basename="job")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("access-requests", AccessRequestViewSet, basename="access-request")

urlpatterns = [
    path("me", MeView.as_view(), name="me"),
    *router.urls,
    path("lineage", LineageIngestView.as_view(), name="lineage-ingest"),
    path("lineage/datasets/<slug:slug>", DatasetLineageView.as_view(), name="lineage-dataset"),
    path("lineage/runs/<str:run_uuid>", RunLineageView.as_view(), name="lineage-run"),
    path(
        "lineage/models/<str:name>/versions/<int:version>",
        ModelVersionLineageView.as_view(),
        name="lineage-model-version",
    ),
    path(
        "registered-models/<str:name>/versions/<int:version>/model-card", ModelCardJsonView.as_view(), name="model-card"
    ),
    path(
        "registered-models/<str:name>/versions/<int:version>/model-card.md",
        ModelCardMarkdownView.as_view(),
        name="model-card-markdown",
    ),
    path(
        "registered-models/<str:name>/versions/<int:version>/model-card.html",
        ModelCardHtmlView.as_view(),
        name="model-card-html",
    ),
    path("", include("apps.monitoring.api_urls")),
    path("", include("apps.alerting.api_urls")),
    path("", include("apps.value.api_urls")),
    # Anything else under /api/v1/ answers the API's JSON 404, not the HTML page, including
    # paths with a line break, which `.` would not match (a slug like "a%0Ab").
    re_path(r"^[\s\S]*$", api_not_found),
]
