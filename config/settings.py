"""Causeway settings: one module, driven by environment variables.

`CAUSEWAY_ENV` picks the safety defaults: `production` (the default) refuses to start
without a SECRET_KEY and turns DEBUG off; `dev` and `test` allow an insecure key.
Every variable is listed in README.md § Configuration.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


CAUSEWAY_ENV = env("CAUSEWAY_ENV", "production")
if CAUSEWAY_ENV not in {"production", "dev", "test"}:
    raise ImproperlyConfigured("CAUSEWAY_ENV must be one of: production, dev, test")
IS_PRODUCTION = CAUSEWAY_ENV == "production"

DEBUG = env_bool("DEBUG", default=False) if IS_PRODUCTION else env_bool("DEBUG", default=CAUSEWAY_ENV == "dev")

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if IS_PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Causeway refuses to start in production without it: "
            "set SECRET_KEY to a long random string (or CAUSEWAY_ENV=dev for local work)."
        )
    SECRET_KEY = "django-insecure-causeway-dev-only-key-do-not-use-in-production-0123456789"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if IS_PRODUCTION else "*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

VAR_DIR = Path(env("CAUSEWAY_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
REDIS_URL = env("REDIS_URL")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.jobs",
    "apps.catalog",
    "apps.tracking",
    "apps.registry",
    "apps.deployments",
    "apps.monitoring",
    "apps.alerting",
    "apps.value",
    "apps.lineage",
    "apps.dashboards",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Axes last: it turns locked-out logins into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.dashboards.navigation.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# Parallel test processes (pytest-xdist) each get their own database, queue and broker file.
_TEST_WORKER = env("PYTEST_XDIST_WORKER", "") if CAUSEWAY_ENV == "test" else ""
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    import dj_database_url

    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 0 if CAUSEWAY_ENV == "test" else 60),
            conn_health_checks=True,
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", str(VAR_DIR / "causeway.sqlite3")),
            # Kept open across requests: opening SQLite and running the PRAGMAs costs more than
            # a `log_metric` call's own queries.
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 0 if CAUSEWAY_ENV == "test" else 60),
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on the
                # busy timeout instead of failing half-way (and the audit chain stays linear).
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=20000;"
                ),
            },
            # A file, not :memory:, so live-server and worker threads share it with WAL locking.
            "TEST": {"NAME": env("SQLITE_TEST_PATH", str(VAR_DIR / f"test-{_TEST_WORKER or 'main'}.sqlite3"))},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication ---------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "apps.accounts.backends.ModelPermissionBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
if CAUSEWAY_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Guardian's anonymous-user row is not used: anonymous visitors see nothing governed.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLED = env_bool("AXES_ENABLED", default=True)

SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12)
SESSION_EXPIRE_AT_BROWSER_CLOSE = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Personal access tokens
TOKEN_DEFAULT_EXPIRY_DAYS = env_int("TOKEN_DEFAULT_EXPIRY_DAYS", 90)
TOKEN_MAX_EXPIRY_DAYS = env_int("TOKEN_MAX_EXPIRY_DAYS", 365)

# --- Security headers -------------------------------------------------------------------
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER via USE_X_FORWARDED_PROTO.
USE_TLS = env_bool("USE_TLS", default=IS_PRODUCTION)
if env_bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = USE_TLS
CSRF_COOKIE_SECURE = USE_TLS
SECURE_SSL_REDIRECT = USE_TLS and env_bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if USE_TLS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = USE_TLS
SECURE_HSTS_PRELOAD = USE_TLS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # plotly.js and Bootstrap set inline styles on elements.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Static and media ---------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # MLflow run and model artifacts: a local folder by default, any S3-compatible store with
    # django-storages when ARTIFACTS_S3_BUCKET is set.
    "artifacts": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": env("ARTIFACTS_S3_BUCKET", ""),
                "endpoint_url": env("ARTIFACTS_S3_ENDPOINT_URL", "") or None,
                "location": env("ARTIFACTS_S3_PREFIX", "artifacts"),
                "file_overwrite": True,
            },
        }
        if env("ARTIFACTS_S3_BUCKET", "")
        else {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(Path(env("ARTIFACTS_ROOT", str(VAR_DIR / "artifacts"))))},
        }
    ),
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not IS_PRODUCTION  # dev and tests serve static/ without collectstatic
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Cache (Redis when configured, else per process) ----------------------------------------
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "causeway"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "causeway"}
    )
}

# --- Catalog ------------------------------------------------------------------------------
CATALOG_MAX_UPLOAD_BYTES = env_int("CATALOG_MAX_UPLOAD_MB", 2048) * 1024 * 1024
# Server paths may only be registered from under this folder.
CATALOG_DATA_ROOT = Path(env("CATALOG_DATA_ROOT", str(VAR_DIR / "data")))
CATALOG_MAX_ACCESS_DAYS = env_int("CATALOG_MAX_ACCESS_DAYS", 365)
CATALOG_FACET_CACHE_SECONDS = env_int("CATALOG_FACET_CACHE_SECONDS", 0 if CAUSEWAY_ENV == "test" else 60)

# --- Tracking (MLflow-compatible) ------------------------------------------------------------
TRACKING_MAX_ARTIFACT_BYTES = env_int("TRACKING_MAX_ARTIFACT_MB", 5120) * 1024 * 1024
# The largest MLflow API request body (log-batch, search) read into memory.
TRACKING_MAX_REQUEST_BYTES = env_int("TRACKING_MAX_REQUEST_MB", 16) * 1024 * 1024

# --- Serving (/serve/<endpoint>/invocations) ---------------------------------------------------
SERVING_MAX_BODY_BYTES = env_int("SERVING_MAX_BODY_MB", 5) * 1024 * 1024
SERVING_CACHE_DIR = Path(env("SERVING_CACHE_DIR", str(VAR_DIR / "serving-cache")))
SERVING_MAX_MODELS = env_int("SERVING_MAX_MODELS", 8)

# --- Business value (use cases, costs, ROI) ----------------------------------------------------
# The organisation's currency (ISO 4217): new use cases and entries use it; no conversion, ever.
CAUSEWAY_CURRENCY = env("CAUSEWAY_CURRENCY", "EUR").strip().upper()
VALUE_MAX_IMPORT_BYTES = env_int("VALUE_MAX_IMPORT_KB", 1024) * 1024
VALUE_ACCRUAL_LOOKBACK_DAYS = env_int("VALUE_ACCRUAL_LOOKBACK_DAYS", 2)

# --- Monitoring ---------------------------------------------------------------------------
# Serving processes buffer telemetry in memory and flush it this often (seconds).
MONITORING_FLUSH_SECONDS = float(env("MONITORING_FLUSH_SECONDS", "5"))
# Prediction records (joined to outcome feedback by request id) are kept this long.
MONITORING_PREDICTION_RETENTION_DAYS = env_int("MONITORING_PREDICTION_RETENTION_DAYS", 90)
# /metrics (Prometheus): a bearer token, and/or client networks allowed without one (CIDRs).
METRICS_TOKEN = env("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS")

# --- Alerting -----------------------------------------------------------------------------
ALERTING_WEBHOOK_TIMEOUT_SECONDS = float(env("ALERTING_WEBHOOK_TIMEOUT_SECONDS", "5"))
# Lets webhooks post to loopback and private-network hosts (on-premise receivers). Link-local
# (cloud metadata), multicast and reserved addresses stay refused either way.
ALERTING_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERTING_WEBHOOK_ALLOW_PRIVATE", default=False)
# The public address of Causeway (e.g. https://causeway.example.com): links in webhook payloads
# and e-mails are absolute when it is set, relative otherwise.
SITE_URL = env("SITE_URL", "")

# --- Email --------------------------------------------------------------------------------
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if IS_PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "causeway@localhost")

# --- Celery -------------------------------------------------------------------------------
# Without Redis the broker is a SQLite file through kombu's SQLAlchemy transport: no server to
# run, yet real worker processes consume from it.
_BROKER_FILE = VAR_DIR / (
    f"celery-broker-test-{_TEST_WORKER or 'main'}.sqlite3" if CAUSEWAY_ENV == "test" else "celery-broker.sqlite3"
)
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or REDIS_URL or f"sqla+sqlite:///{_BROKER_FILE}"
CELERY_TASK_IGNORE_RESULT = True  # outcomes live on the Job row, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "causeway") + (
    f"-test-{_TEST_WORKER or 'main'}" if CAUSEWAY_ENV == "test" else ""
)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Fail fast when the broker is down: the job stays `queued` and the sweeper resends it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# How often the embedded SQL broker is polled (Redis pushes; this only applies to the SQL one).
EMBEDDED_BROKER_POLLING_SECONDS = 0.1 if CAUSEWAY_ENV == "test" else 0.5
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# A plain schedule in code: reviewed with the code, no extra tables (see README § Jobs).
CELERY_BEAT_SCHEDULE = {
    "resend-stale-queued-jobs": {"task": "jobs.resend_stale_queued_jobs", "schedule": 60.0},
    "refresh-planner-statistics": {"task": "core.refresh_planner_statistics", "schedule": 3600.0},
    "expire-pending-deployment-requests": {"task": "deployments.expire_pending_requests", "schedule": 300.0},
    "flush-serving-telemetry": {"task": "monitoring.flush_telemetry", "schedule": 10.0},
    "compute-drift": {"task": "monitoring.compute_drift_reports", "schedule": 900.0},
    "purge-expired-payloads": {"task": "monitoring.purge_expired_payloads", "schedule": 3600.0},
    "evaluate-alert-rules": {"task": "alerting.evaluate_alert_rules", "schedule": 60.0},
    "accrue-compute-costs": {"task": "value.accrue_compute_costs", "schedule": 3600.0},
}
JOB_RESEND_AFTER_SECONDS = env_int("JOB_RESEND_AFTER_SECONDS", 120)
JOB_RETRY_BASE_SECONDS = float(env("JOB_RETRY_BASE_SECONDS", "0.2" if CAUSEWAY_ENV == "test" else "5"))

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "apps.accounts.authentication.BasicTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    # One budget per caller (apps/core/ratelimit.py): API_RATE_LIMIT below.
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.ratelimit.CallerRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Request budgets per signed-in user ("N/second|minute|hour"; "0" turns one off). Counted in the
# cache: per process without REDIS_URL. Off by default in tests, which set them where they test them.
API_RATE_LIMIT = env("API_RATE_LIMIT", "0" if CAUSEWAY_ENV == "test" else "1200/minute")
MLFLOW_API_RATE_LIMIT = env("MLFLOW_API_RATE_LIMIT", "0" if CAUSEWAY_ENV == "test" else "12000/minute")
SPECTACULAR_SETTINGS = {
    "TITLE": "Causeway API",
    "DESCRIPTION": "Causeway's own REST API. The MLflow-compatible API lives under /api/2.0/mlflow/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.add_error_responses",
    ],
    # Several models have a `status` field with their own choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.jobs.models.Job.Status",
        "DatasetVersionStatusEnum": "apps.catalog.models.DatasetVersion.Status",
        "AccessRequestStatusEnum": "apps.catalog.models.AccessRequest.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
