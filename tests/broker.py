"""Point the Celery app at a broker that is not there, for broker-down tests."""

from contextlib import contextmanager

from config.celery import app


@contextmanager
def broker_down():
    # Set the real connection pools aside (kombu keeps producer pools in a global registry,
    # so closing them would break later sends) and restore them afterwards.
    saved = (app.conf.broker_url, app._pool, app.amqp._producer_pool)
    app._pool = app.amqp._producer_pool = None
    app.conf.broker_url = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    try:
        yield
    finally:
        app.conf.broker_url, app._pool, app.amqp._producer_pool = saved
