"""Zenith settings: every tunable is read from the environment here, with its default.

This file is the one place where configuration lives. The README's configuration table
lists the same variables; `env_*` helpers keep parsing uniform.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ZENITH_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


# A bad value stops the process here, at startup, with a message naming the variable, rather
# than surfacing later as a psycopg or redis-py error inside a worker that is already running.
def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        # A typo such as "ture" would otherwise silently mean false.
        raise ImproperlyConfigured(f"{name}={raw!r}: expected one of {sorted(_TRUE | _FALSE)}")
    return value in _TRUE


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


# --- Django core -------------------------------------------------------------------------

SECRET_KEY = env_str("SECRET_KEY", "zenith-dev-insecure-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "django_prometheus",
    "jobs",
    "monitoring",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "monitoring.middleware.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "zenith.urls"
WSGI_APPLICATION = "zenith.wsgi.application"

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
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------
# DATABASE_URL unset -> an embedded SQLite file under var/ in WAL mode, so `make run` works
# on a machine with no PostgreSQL. Production and the test suite use PostgreSQL.

DATABASE_URL = os.environ.get("DATABASE_URL", "")
DB_CONN_MAX_AGE = env_int("ZENITH_DB_CONN_MAX_AGE", 300, minimum=0)
# Django's psycopg pool (PostgreSQL only; ignored on SQLite): one pool per process, opened on
# first use. zenith_worker closes its own before forking, so each worker builds its own.
DB_POOL = env_bool("ZENITH_DB_POOL", False)
DB_POOL_MIN_SIZE = env_int("ZENITH_DB_POOL_MIN_SIZE", 2, minimum=0)
DB_POOL_MAX_SIZE = env_int("ZENITH_DB_POOL_MAX_SIZE", 10, minimum=1)
if DB_POOL and DB_POOL_MIN_SIZE > DB_POOL_MAX_SIZE:
    raise ImproperlyConfigured(
        f"ZENITH_DB_POOL_MIN_SIZE={os.environ.get('ZENITH_DB_POOL_MIN_SIZE', str(DB_POOL_MIN_SIZE))!r} is larger "
        f"than ZENITH_DB_POOL_MAX_SIZE={os.environ.get('ZENITH_DB_POOL_MAX_SIZE', str(DB_POOL_MAX_SIZE))!r}")

# A batch's commit never idles inside its transaction; a client that does (a worker host cut
# off mid-commit) would hold the job row's lock. PostgreSQL ends such sessions after this.
DB_IDLE_IN_TRANSACTION_TIMEOUT = env_int("ZENITH_DB_IDLE_IN_TRANSACTION_TIMEOUT", 60)

if DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=0 if DB_POOL else DB_CONN_MAX_AGE,
                                conn_health_checks=not DB_POOL)
    if _db["ENGINE"] == "django.db.backends.postgresql":
        options = _db.setdefault("OPTIONS", {})
        if DB_POOL:
            options["pool"] = {"min_size": DB_POOL_MIN_SIZE, "max_size": DB_POOL_MAX_SIZE}
        # pgbouncer in transaction pooling mode cannot keep server-side cursors across
        # transactions (the failure CSV export streams with one).
        _db["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("ZENITH_DB_DISABLE_SERVER_SIDE_CURSORS", False)
        if DB_IDLE_IN_TRANSACTION_TIMEOUT:
            options["options"] = f"-c idle_in_transaction_session_timeout={DB_IDLE_IN_TRANSACTION_TIMEOUT * 1000}"
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "zenith.sqlite3"),
        "TEST": {"NAME": str(VAR_DIR / "test_zenith.sqlite3")},
    }
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Several worker processes write concurrently: WAL lets readers proceed, IMMEDIATE takes
    # the write lock up front so transactions queue on `timeout` instead of failing mid-way.
    _db.setdefault("OPTIONS", {}).update({
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    })
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and RQ ------------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r}: must start with redis://, rediss:// or unix://")
# Per process (jobs/redis.py); redis-py raises at once when a process would need one more.
# At least 1: redis-py itself would silently read 0 as its own default of 100.
REDIS_MAX_CONNECTIONS = env_int("ZENITH_REDIS_MAX_CONNECTIONS", 50, minimum=1)
RQ_DEFAULT_TIMEOUT = env_int("ZENITH_RQ_DEFAULT_TIMEOUT", 360)
RQ_RESULT_TTL = env_int("ZENITH_RQ_RESULT_TTL", 600)

# Queues per kind of work (seed 1.2). Each has a high and a low band next to it so that
# priorities 1-10 are honoured by queue order: workers listen high -> normal -> low.
ZENITH_BASE_QUEUES = ["ingestion", "analysis", "reconciliation", "embedding", "default"]
ZENITH_PRIORITY_BANDS = ["high", "normal", "low"]


def _queue_names() -> list[str]:
    names = []
    for band in ZENITH_PRIORITY_BANDS:
        for base in ZENITH_BASE_QUEUES:
            names.append(base if band == "normal" else f"{base}-{band}")
    return names


# django-rq's dashboard and `rqworker` read these; Zenith's own code uses zenith.infra.redis.get_redis().
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": RQ_DEFAULT_TIMEOUT} for name in _queue_names()}
# Zenith enqueues through its own on-commit hooks (jobs.engine.dispatch); django-rq's own deferral
# would hide the RQ job id we store on the batch.
RQ = {"COMMIT_MODE": "auto"}
RQ_SHOW_ADMIN_LINK = True
RQ_API_TOKEN = env_str("RQ_API_TOKEN", "")

# --- Zenith: limits, retries, batching ---------------------------------------------------

ZENITH_MAX_ITEMS_PER_JOB = env_int("ZENITH_MAX_ITEMS_PER_JOB", 1_000_000)
ZENITH_DEFAULT_PRIORITY = 5
# Batch-level retries (seed: max_retries=3, exponential backoff with jitter, max 600 s).
ZENITH_MAX_RETRIES = env_int("ZENITH_MAX_RETRIES", 3)
ZENITH_RETRY_BACKOFF_BASE = env_float("ZENITH_RETRY_BACKOFF_BASE", 2.0)
ZENITH_RETRY_BACKOFF_MAX = env_float("ZENITH_RETRY_BACKOFF_MAX", 600.0)
# Hard and soft time limits per batch (seed: 300 s / 240 s); a data type may override them.
ZENITH_TIME_LIMIT = env_int("ZENITH_TIME_LIMIT", 300)
ZENITH_SOFT_TIME_LIMIT = env_int("ZENITH_SOFT_TIME_LIMIT", 240)
# A running batch writes a heartbeat to PostgreSQL; one silent for this long is presumed lost.
ZENITH_HEARTBEAT_SECONDS = env_float("ZENITH_HEARTBEAT_SECONDS", 2.0)
ZENITH_BATCH_LEASE_SECONDS = env_float("ZENITH_BATCH_LEASE_SECONDS", 30.0)
# A queued batch whose RQ message is missing for this long is re-enqueued by the reconciler.
ZENITH_REQUEUE_GRACE_SECONDS = env_float("ZENITH_REQUEUE_GRACE_SECONDS", 10.0)
# Sleep in the worker for throttle waits up to this long; longer waits reschedule the batch.
ZENITH_THROTTLE_MAX_INLINE_WAIT = env_float("ZENITH_THROTTLE_MAX_INLINE_WAIT", 2.0)
# Scale for the optimizer's pause between batches of one job (seed: 100/200/500 ms). Off by
# default: the pause idles workers without protecting anything the per-job window, the
# cluster-wide throttle and load-based batch sizing do not (it cut throughput by a third in
# bench/); 1 restores the seed's behaviour.
ZENITH_BATCH_DELAY_FACTOR = env_float("ZENITH_BATCH_DELAY_FACTOR", 0.0)
# A message may go on with its job's next batches for this long before giving the worker
# back to the queues (0 = one batch per message).
ZENITH_CHAIN_SECONDS = env_float("ZENITH_CHAIN_SECONDS", 5.0)
# Per-job cap on concurrently queued+running batches; 0 = use the optimizer's choice.
ZENITH_MAX_CONCURRENT_BATCHES = env_int("ZENITH_MAX_CONCURRENT_BATCHES", 0)
# Workers are recycled after this many batches (seed: worker_max_tasks_per_child=50) or when
# their resident memory passes the limit.
ZENITH_WORKER_MAX_JOBS = env_int("ZENITH_WORKER_MAX_JOBS", 50)
ZENITH_WORKER_MAX_RSS_MB = env_int("ZENITH_WORKER_MAX_RSS_MB", 1024)
# Scheduling priority of worker processes (os.nice increment): on a machine shared with the
# web process, a positive value keeps status pages responsive while workers are saturated.
ZENITH_WORKER_NICE = env_int("ZENITH_WORKER_NICE", 0)
ZENITH_RESOURCE_SAMPLE_TTL = env_int("ZENITH_RESOURCE_SAMPLE_TTL", 600)

# Circuit breaker per data type (seed 8.2: open above 50 % errors, recover after cooldown).
ZENITH_BREAKER_ERROR_RATE = env_float("ZENITH_BREAKER_ERROR_RATE", 0.5)
ZENITH_BREAKER_WINDOW_SECONDS = env_int("ZENITH_BREAKER_WINDOW_SECONDS", 60)
ZENITH_BREAKER_MIN_VOLUME = env_int("ZENITH_BREAKER_MIN_VOLUME", 50)
ZENITH_BREAKER_COOLDOWN_SECONDS = env_float("ZENITH_BREAKER_COOLDOWN_SECONDS", 60.0)

# Admission control: refuse new work (429) above these backlogs (seed 8.3: 50,000 critical).
ZENITH_ADMISSION_MAX_BACKLOG_BATCHES = env_int("ZENITH_ADMISSION_MAX_BACKLOG_BATCHES", 50_000)
ZENITH_ADMISSION_MAX_BACKLOG_ITEMS = env_int("ZENITH_ADMISSION_MAX_BACKLOG_ITEMS", 0)

# Data types: the built-ins live in jobs.datatypes.registry. ZENITH_DATA_TYPES_JSON adds or
# overrides entries, e.g. '{"invoice": {"handler": "myco.handlers.Invoice", "queue":
# "default", "batch_size": 250, "rate_limit": "20/s"}}'.
ZENITH_DATA_TYPES: dict = json.loads(os.environ.get("ZENITH_DATA_TYPES_JSON", "") or "{}")

# --- Maintenance, health, alerts ---------------------------------------------------------

ZENITH_RETENTION_DAYS = env_int("ZENITH_RETENTION_DAYS", 30)
ZENITH_CLEANUP_CHUNK = env_int("ZENITH_CLEANUP_CHUNK", 500)
ZENITH_HEALTH_INTERVAL_SECONDS = env_int("ZENITH_HEALTH_INTERVAL_SECONDS", 300)
ZENITH_RECONCILE_INTERVAL_SECONDS = env_int("ZENITH_RECONCILE_INTERVAL_SECONDS", 60)
ZENITH_ALERT_THRESHOLDS = {
    "cpu_critical": env_float("ZENITH_ALERT_CPU_CRITICAL", 95.0),
    "memory_critical_gb": env_float("ZENITH_ALERT_MEMORY_CRITICAL_GB", 1.0),
    "iowait_warning": env_float("ZENITH_ALERT_IOWAIT_WARNING", 50.0),
    "queue_warning": env_int("ZENITH_ALERT_QUEUE_WARNING", 10_000),
    "queue_critical": env_int("ZENITH_ALERT_QUEUE_CRITICAL", 50_000),
    "error_rate_warning": env_float("ZENITH_ALERT_ERROR_RATE_WARNING", 0.05),
    "error_rate_critical": env_float("ZENITH_ALERT_ERROR_RATE_CRITICAL", 0.20),
    "error_rate_window_seconds": env_int("ZENITH_ALERT_ERROR_RATE_WINDOW", 900),
    "worker_cpu_warning": env_float("ZENITH_ALERT_WORKER_CPU_WARNING", 90.0),
}
ZENITH_ALERT_WEBHOOK_URL = env_str("ZENITH_ALERT_WEBHOOK_URL", "")
ZENITH_ALERT_EMAILS = env_list("ZENITH_ALERT_EMAILS", [])
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "zenith@localhost")

# --- REST API ----------------------------------------------------------------------------

# API tokens already checked are trusted again for this long without a database query.
ZENITH_TOKEN_CACHE_SECONDS = env_int("ZENITH_TOKEN_CACHE_SECONDS", 30)
# Status polls are answered from a Redis copy this fresh (jobs/status_cache.py); 0 turns it off.
ZENITH_STATUS_CACHE_SECONDS = env_float("ZENITH_STATUS_CACHE_SECONDS", 1.0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "jobs.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "submissions": env_str("ZENITH_SUBMIT_THROTTLE", "120/min"),
    },
    "EXCEPTION_HANDLER": "jobs.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Zenith API",
    "DESCRIPTION": "Batch processing for large forensic-accounting datasets.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "jobs.api.schema.add_error_responses"],
}
# Uploads above this size are spooled to disk while parsed (Django's own default is 2.5 MB).
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("ZENITH_UPLOAD_MEMORY_BYTES", 2_621_440)
# Largest accepted request body for JSON submissions and largest uploaded file.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ZENITH_MAX_JSON_BODY_BYTES", 64 * 1024 * 1024)
ZENITH_MAX_UPLOAD_BYTES = env_int("ZENITH_MAX_UPLOAD_BYTES", 1024 * 1024 * 1024)
# The upload page keeps a previewed file until it is submitted (jobs/staged_uploads.py).
ZENITH_STAGED_UPLOAD_DIR = Path(os.environ.get("ZENITH_STAGED_UPLOAD_DIR", VAR_DIR / "uploads"))
ZENITH_STAGED_UPLOAD_SECONDS = env_int("ZENITH_STAGED_UPLOAD_SECONDS", 3600)
FILE_UPLOAD_TEMP_DIR = None

# --- Auth, i18n, static ------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
# UTC everywhere: Django sets the process TZ from this and the schedulers read cron in it.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Logging -----------------------------------------------------------------------------
# JSON lines with the correlation id by default; ZENITH_LOG_FORMAT=text for development.
# gunicorn's own loggers (gunicorn.error, gunicorn.access) are pointed at this configuration
# by zenith/gunicorn_conf.py, so the web's lines have the same format as everything else.

ZENITH_LOG_FORMAT = env_str("ZENITH_LOG_FORMAT", "json")
ZENITH_LOG_LEVEL = env_str("ZENITH_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "zenith.infra.logging.CorrelationFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if ZENITH_LOG_FORMAT == "json" else "text",
            "filters": ["correlation"],
        },
    },
    "root": {"handlers": ["console"], "level": ZENITH_LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "rq.worker": {"level": env_str("ZENITH_RQ_LOG_LEVEL", "WARNING")},
        "ofxtools": {"level": "WARNING"},
    },
}

PROMETHEUS_EXPORT_MIGRATIONS = False
# Optional bearer token for /metrics (empty: open, as Prometheus scrapes usually are).
ZENITH_METRICS_TOKEN = env_str("ZENITH_METRICS_TOKEN", "")
