"""Database housekeeping run by Celery beat."""

from celery import shared_task
from django.db import connection


@shared_task(name="core.refresh_planner_statistics", acks_late=True)
def refresh_planner_statistics() -> str:
    """Keep SQLite's query planner statistics current (PostgreSQL's autovacuum does this by
    itself). Without them SQLite sorts the whole catalog instead of walking the name index:
    measured 208 ms → 5 ms for a catalog page at 100,000 datasets."""
    if connection.vendor != "sqlite":
        return "skipped"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return "analyzed"
