"""gunicorn settings for Causeway's web process (`gunicorn -c platform/gunicorn.conf.py config.wsgi`)."""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"

# gthread: a few processes with threads each keeps memory low while slow clients (uploads,
# artifact downloads) do not block a whole process.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("WEB_THREADS", 4))

# Long enough for a large artifact upload; anything slower belongs in a Celery job.
timeout = int(os.environ.get("WEB_TIMEOUT", 60))
graceful_timeout = 30
keepalive = 5

# Recycle processes now and then so a slow leak never becomes an outage.
max_requests = 2000
max_requests_jitter = 200

# Only the proxy in front may set X-Forwarded-* (and so REMOTE_ADDR, used by the audit trail).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
