"""This app's routes under /api/v1/ (included by config/api_urls.py, names in the "api" namespace)."""

from rest_framework.routers import SimpleRouter

from apps.alerting.api import AlertViewSet

router = SimpleRouter()
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns: list = router.urls
