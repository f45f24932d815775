"""This app's routes under /api/v1/ (included by config/api_urls.py, names in the "api" namespace)."""

urlpatterns: list = []
