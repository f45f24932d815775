"""This app's routes under /api/v1/ (included by config/api_urls.py, names in the "api" namespace)."""

from rest_framework.routers import SimpleRouter

from apps.value.api import UseCaseViewSet

router = SimpleRouter()
router.register("use-cases", UseCaseViewSet, basename="use-case")

urlpatterns: list = [*router.urls]
