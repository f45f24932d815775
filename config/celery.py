"""The Celery app. Tasks are discovered from each app's `tasks.py`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("causeway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _tune_embedded_broker() -> None:
    # kombu's SQLAlchemy transport hands every transport option to create_engine(), so its
    # polling interval cannot travel that way; it is a class attribute instead.
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("sqla+"):
        from kombu.transport import sqlalchemy

        sqlalchemy.Transport.polling_interval = settings.EMBEDDED_BROKER_POLLING_SECONDS


_tune_embedded_broker()
