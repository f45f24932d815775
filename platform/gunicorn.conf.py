"""gunicorn settings for Causeway's web process.

    gunicorn -c platform/gunicorn.conf.py config.wsgi

Every number can be overridden from the environment; an empty variable counts as unset.
"""

import multiprocessing
import os


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


# Platforms (Heroku-style, Kubernetes, compose) hand the port in PORT; listen on every
# interface because the container's network namespace is the boundary, not the host's.
bind = f"0.0.0.0:{_env_int('PORT', 8000)}"

# gthread: a few processes with a few threads each. Django views mostly wait on the database
# or on file I/O, so threads keep memory low while one slow client (an artifact upload or
# download) does not block a whole process.
worker_class = "gthread"
# The classic 2 × cores + 1, capped at 8 so a big node does not start dozens of processes.
# In a container cpu_count() is the host's, not the CPU limit's: set WEB_CONCURRENCY there.
workers = _env_int("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8))
threads = _env_int("WEB_THREADS", 4)

# Long enough for a large artifact upload; anything slower belongs in a Celery job.
timeout = _env_int("WEB_TIMEOUT", 60)
# On SIGTERM (deploys, scale-in) in-flight requests get 30 s to finish; keep it below the
# orchestrator's kill deadline (Kubernetes terminationGracePeriodSeconds: 40 for web).
graceful_timeout = _env_int("WEB_GRACEFUL_TIMEOUT", 30)
# A little above the usual load balancer idle reuse so the proxy, not gunicorn, closes first.
keepalive = _env_int("WEB_KEEPALIVE", 5)

# Recycle each process after ~2000 requests so a slow leak never becomes an outage; the
# jitter keeps all processes from restarting at the same moment.
max_requests = _env_int("WEB_MAX_REQUESTS", 2000)
max_requests_jitter = _env_int("WEB_MAX_REQUESTS_JITTER", 200)

# Only the proxy in front may set X-Forwarded-* (and so the client address the audit trail
# records). Default: a proxy on the same host. Behind a Kubernetes ingress set "*" since the
# pod is reachable only through it.
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Logs go to stdout/stderr: the container runtime collects them (twelve-factor).
accesslog = "-"
errorlog = "-"
loglevel = _env("LOG_LEVEL", "info").lower()


def post_worker_init(worker) -> None:
    """In a serving process (SERVING_WARM_UP=1: the Procfile's `serve` entry, the k8s serve
    deployment) load every live endpoint's model before the worker takes its first request, so
    no caller waits for a model to be copied and loaded after a start, a restart or a recycle
    (max_requests). gunicorn calls this once per worker process, after it has loaded Django."""
    if _env("SERVING_WARM_UP", "0").lower() not in ("1", "true", "yes", "on"):
        return
    from django.db import connections

    from apps.deployments.serving.loader import warm_up

    try:
        # notify(): the arbiter kills a worker silent for longer than `timeout`.
        report = warm_up(heartbeat=worker.notify)
        worker.log.info(
            "serving warm-up: %d loaded, %d failed, %d skipped",
            len(report.loaded),
            len(report.failed),
            len(report.skipped),
        )
    finally:
        # The worker's first request opens its own connection; do not carry one over idle.
        connections.close_all()
