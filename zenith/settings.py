"""Zenith settings: every tunable is read from the environment here, with its default.

This file is the one place where configuration lives. The README's configuration table
lists the same variables; `env_*` helpers keep parsing uniform.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import csp.constants as csp
import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from zenith.infra.inline_hashes import inline_hashes

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

# Development (`make run`, the test suite, a checkout with nothing set) or production (the
# image, compose and Kubernetes set it). Production has the safe defaults below and refuses to
# start unsafe (the end of this file). Unset, a DEBUG explicitly false means production:
# that is how a deployment says it is one, and it must not then start with development keys.
ZENITH_ENV = env_str("ZENITH_ENV", "") or (
    "production" if os.environ.get("DEBUG", "").strip().lower() in _FALSE else "development")
if ZENITH_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"ZENITH_ENV={ZENITH_ENV!r}: expected development or production")
PRODUCTION = ZENITH_ENV == "production"

# Public, so only ever good for development: production refuses it.
DEVELOPMENT_SECRET_KEY = "zenith-dev-insecure-key-change-me"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# HTTPS, in production by default. TLS ends at the ingress or load balancer in front, which
# must set (overwrite) ZENITH_PROXY_SSL_HEADER; gunicorn is then reached over plain HTTP.
# Session and CSRF cookies go over HTTPS only (production refuses to turn that off); HTTP
# redirects to HTTPS except the probes and the Prometheus scrape, which come from inside
# the cluster over plain HTTP; HSTS for a year, subdomains included.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
ZENITH_PROXY_SSL_HEADER = env_str("ZENITH_PROXY_SSL_HEADER", "X-Forwarded-Proto" if PRODUCTION else "")
if ZENITH_PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + ZENITH_PROXY_SSL_HEADER.upper().replace("-", "_"), "https")

# Content-Security-Policy (django-csp) on every page, in development too so that a violation
# shows before it ships: scripts and styles from Zenith's own origin only, inline ones only
# with the response's nonce (templates/drf_spectacular/swagger_ui.html), no plugins, no
# framing, forms post to Zenith only. Style attributes in templates are not allowed either:
# they are classes in static/zenith/app.css.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        # Plus the exact inline blocks of django-rq's dashboard, by hash (zenith/infra/inline_hashes.py).
        "script-src": [csp.SELF, csp.NONCE, *inline_hashes("django_rq", "script")],
        "style-src": [csp.SELF, csp.NONCE, *inline_hashes("django_rq", "style")],
        # data: for the small SVG icons stylesheets embed (Swagger UI, the admin).
        "img-src": [csp.SELF, "data:"],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}

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
    "csp",
    "axes",
    "jobs",
    "monitoring",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "monitoring.middleware.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a body: a declared length over the limit is a 413 at once.
    "zenith.infra.request_limits.DeclaredLengthMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a login refused for too many failures into a 429.
    "axes.middleware.AxesMiddleware",
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

# Queues per kind of work (docs/design.md, "Values kept from the original design"). Each has
# a high and a low band next to it so that priorities 1-10 are honoured by queue order:
# workers listen high -> normal -> low.
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

# Django's cache (the API throttles' counters) in Redis, shared by every web process
# (zenith/infra/cache.py). Same database as the queues unless ZENITH_CACHE_URL names another.
ZENITH_CACHE_URL = env_str("ZENITH_CACHE_URL", "") or REDIS_URL
if not ZENITH_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"ZENITH_CACHE_URL={ZENITH_CACHE_URL!r}: must start with redis://, rediss:// or unix://")
CACHES = {
    "default": {
        "BACKEND": "zenith.infra.cache.PrefixedRedisCache",
        "LOCATION": ZENITH_CACHE_URL,
        "KEY_PREFIX": env_str("ZENITH_CACHE_KEY_PREFIX", "zenith-cache") or "zenith-cache",
        "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
    },
}

# --- Zenith: limits, retries, batching ---------------------------------------------------

ZENITH_MAX_ITEMS_PER_JOB = env_int("ZENITH_MAX_ITEMS_PER_JOB", 1_000_000)
# 1 (lowest) to 10 (highest); what a submission gets when it names none (jobs.models.PRIORITIES).
ZENITH_DEFAULT_PRIORITY = env_int("ZENITH_DEFAULT_PRIORITY", 5, minimum=1)
if ZENITH_DEFAULT_PRIORITY > 10:
    raise ImproperlyConfigured(f"ZENITH_DEFAULT_PRIORITY={ZENITH_DEFAULT_PRIORITY}: must be at most 10")
# Batch-level retries (docs/design.md, "Two kinds of failure").
ZENITH_MAX_RETRIES = env_int("ZENITH_MAX_RETRIES", 3)
ZENITH_RETRY_BACKOFF_BASE = env_float("ZENITH_RETRY_BACKOFF_BASE", 2.0)
ZENITH_RETRY_BACKOFF_MAX = env_float("ZENITH_RETRY_BACKOFF_MAX", 600.0)
# Hard and soft time limits per batch (hard / soft); a data type may override them.
ZENITH_TIME_LIMIT = env_int("ZENITH_TIME_LIMIT", 300)
ZENITH_SOFT_TIME_LIMIT = env_int("ZENITH_SOFT_TIME_LIMIT", 240)
# A running batch writes a heartbeat to PostgreSQL; one silent for this long is presumed lost.
ZENITH_HEARTBEAT_SECONDS = env_float("ZENITH_HEARTBEAT_SECONDS", 2.0)
ZENITH_BATCH_LEASE_SECONDS = env_float("ZENITH_BATCH_LEASE_SECONDS", 30.0)
# A queued batch whose RQ message is missing for this long is re-enqueued by the reconciler.
ZENITH_REQUEUE_GRACE_SECONDS = env_float("ZENITH_REQUEUE_GRACE_SECONDS", 10.0)
# Sleep in the worker for throttle waits up to this long; longer waits reschedule the batch.
ZENITH_THROTTLE_MAX_INLINE_WAIT = env_float("ZENITH_THROTTLE_MAX_INLINE_WAIT", 2.0)
# Scale for the optimizer's pause between batches of one job (100/200/500 ms by load). Off by
# default: the pause idles workers without protecting anything the per-job window, the
# cluster-wide throttle and load-based batch sizing do not (it cut throughput by a third in
# bench/); 1 restores the original design's pause.
ZENITH_BATCH_DELAY_FACTOR = env_float("ZENITH_BATCH_DELAY_FACTOR", 0.0)
# A message may go on with its job's next batches for this long before giving the worker
# back to the queues (0 = one batch per message).
ZENITH_CHAIN_SECONDS = env_float("ZENITH_CHAIN_SECONDS", 5.0)
# Per-job cap on concurrently queued+running batches; 0 = the optimizer's choice, widened to the
# job's fair share of idle workers (jobs.engine.capacity).
ZENITH_MAX_CONCURRENT_BATCHES = env_int("ZENITH_MAX_CONCURRENT_BATCHES", 0)
# How long a process reuses its count of live workers and unfinished jobs per queue.
ZENITH_CAPACITY_CACHE_SECONDS = env_float("ZENITH_CAPACITY_CACHE_SECONDS", 5.0)
# Workers are recycled after this many batches  or when
# their resident memory passes the limit.
ZENITH_WORKER_MAX_JOBS = env_int("ZENITH_WORKER_MAX_JOBS", 50)
ZENITH_WORKER_MAX_RSS_MB = env_int("ZENITH_WORKER_MAX_RSS_MB", 1024)
# Scheduling priority of worker processes (os.nice increment): on a machine shared with the
# web process, a positive value keeps status pages responsive while workers are saturated.
ZENITH_WORKER_NICE = env_int("ZENITH_WORKER_NICE", 0)
ZENITH_RESOURCE_SAMPLE_TTL = env_int("ZENITH_RESOURCE_SAMPLE_TTL", 600)

# Circuit breaker per data type (docs/design.md, "Load").
ZENITH_BREAKER_ERROR_RATE = env_float("ZENITH_BREAKER_ERROR_RATE", 0.5)
ZENITH_BREAKER_WINDOW_SECONDS = env_int("ZENITH_BREAKER_WINDOW_SECONDS", 60)
ZENITH_BREAKER_MIN_VOLUME = env_int("ZENITH_BREAKER_MIN_VOLUME", 50)
ZENITH_BREAKER_COOLDOWN_SECONDS = env_float("ZENITH_BREAKER_COOLDOWN_SECONDS", 60.0)

# Admission control: refuse new work (429) above these backlogs (docs/design.md, "Load").
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
    # DRF's JSON parser, held to ZENITH_MAX_JSON_DEPTH (its json.load recurses).
    "DEFAULT_PARSER_CLASSES": ["jobs.api.streaming.BoundedJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "submissions": env_str("ZENITH_SUBMIT_THROTTLE", "120/min"),
        "projects": env_str("ZENITH_PROJECT_CREATE_THROTTLE", "30/hour"),
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
    "ENUM_NAME_OVERRIDES": {"ProjectRoleEnum": "jobs.models.core.ProjectRole.choices",
                            "ReviewStateEnum": "jobs.models.reviews.ReviewState.choices",
                            "BreakerForceStateEnum": ["open", "closed", "auto"],
                            "BreakerStateEnum": ["closed", "open", "half_open"]},
}
# Uploads above this size are spooled to disk while parsed (Django's own default is 2.5 MB).
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("ZENITH_UPLOAD_MEMORY_BYTES", 2_621_440)
# Largest accepted request body for JSON submissions and largest uploaded file.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ZENITH_MAX_JSON_BODY_BYTES", 64 * 1024 * 1024)
ZENITH_MAX_UPLOAD_BYTES = env_int("ZENITH_MAX_UPLOAD_BYTES", 1024 * 1024 * 1024)
# What reading one upload or body may cost (jobs/importing/limits.py; docs/operations.md,
# "Limits"): over any of these the request is refused with a 413 (400 for nesting) naming it.
ZENITH_MAX_DECOMPRESSED_BYTES = env_int("ZENITH_MAX_DECOMPRESSED_BYTES", 1024 * 1024 * 1024, minimum=1)
ZENITH_MAX_DECOMPRESSION_RATIO = env_int("ZENITH_MAX_DECOMPRESSION_RATIO", 100, minimum=1)
ZENITH_MAX_LINE_BYTES = env_int("ZENITH_MAX_LINE_BYTES", 64 * 1024, minimum=1024)
ZENITH_MAX_COLUMNS = env_int("ZENITH_MAX_COLUMNS", 1024, minimum=1)
ZENITH_MAX_JSON_DEPTH = env_int("ZENITH_MAX_JSON_DEPTH", 64, minimum=2)
if ZENITH_MAX_JSON_DEPTH > 500:
    # Python's JSON parser recurses: much deeper than this is a RecursionError, not a setting.
    raise ImproperlyConfigured(f"ZENITH_MAX_JSON_DEPTH={ZENITH_MAX_JSON_DEPTH}: must be at most 500")
ZENITH_MAX_OFX_BYTES = env_int("ZENITH_MAX_OFX_BYTES", 16 * 1024 * 1024, minimum=1024)
ZENITH_MAX_XLSX_PART_BYTES = env_int("ZENITH_MAX_XLSX_PART_BYTES", 128 * 1024 * 1024, minimum=1024)
ZENITH_MAX_PARSE_SECONDS = env_float("ZENITH_MAX_PARSE_SECONDS", 300.0)
if ZENITH_MAX_PARSE_SECONDS <= 0:
    raise ImproperlyConfigured(f"ZENITH_MAX_PARSE_SECONDS={ZENITH_MAX_PARSE_SECONDS:g}: must be more than 0")
# The upload page keeps a previewed file until it is submitted (jobs/staged_uploads.py).
ZENITH_STAGED_UPLOAD_DIR = Path(os.environ.get("ZENITH_STAGED_UPLOAD_DIR", VAR_DIR / "uploads"))
ZENITH_STAGED_UPLOAD_SECONDS = env_int("ZENITH_STAGED_UPLOAD_SECONDS", 3600)
FILE_UPLOAD_TEMP_DIR = None
# Slow clients (zenith/infra/gunicorn_worker.py): gunicorn hands a request to a thread only once
# all of it has arrived, so a client that sends slowly holds a connection, never a thread.
# The request line and headers must arrive within the first; while the body arrives, or a
# response waits for the client to read it, a silence longer than the second ends the
# connection. A body declared larger than ZENITH_MAX_UPLOAD_BYTES is refused unread (413).
ZENITH_CLIENT_HEADER_TIMEOUT = env_float("ZENITH_CLIENT_HEADER_TIMEOUT", 10.0)
ZENITH_CLIENT_IDLE_TIMEOUT = env_float("ZENITH_CLIENT_IDLE_TIMEOUT", 30.0)
for _name in ("ZENITH_CLIENT_HEADER_TIMEOUT", "ZENITH_CLIENT_IDLE_TIMEOUT"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]:g}: must be more than 0")

# --- Auth, i18n, static ------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login throttling with django-axes (docs/operations.md, "Accounts and roles"): the login page
# and the admin's refuse a username, and separately an address, after
# ZENITH_LOGIN_FAILURE_LIMIT failed attempts within ZENITH_LOGIN_COOLOFF_MINUTES (429, even
# with the right password); failures older than that are forgotten. API tokens do not log in.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before checking it
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("ZENITH_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("ZENITH_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each counted on its own
# A success does not wipe the failures: otherwise anyone with an account could reset the
# address's count between guesses at someone else's password.
AXES_RESET_ON_SUCCESS = False
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # shared by every process
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# How many proxies in front append the client's address to X-Forwarded-For. 0 uses the
# connection's address and ignores the header, which a client could forge to get a fresh count
# per guess; but behind a proxy that address is the proxy's, shared by every client, and one
# attacker would lock everyone out. Production puts one TLS-ending proxy in front (above).
ZENITH_TRUSTED_PROXY_COUNT = env_int("ZENITH_TRUSTED_PROXY_COUNT", 1 if PRODUCTION else 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "jobs.web.login_throttle.client_address"

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
        # django-axes logs its version at INFO in every process start (every manage.py command).
        "axes.apps": {"level": "WARNING"},
    },
}

PROMETHEUS_EXPORT_MIGRATIONS = False
# Bearer token for /metrics, which names hosts and processes. Empty: open in development,
# closed (403) in production, where scrapers must send `Authorization: Bearer <token>`.
ZENITH_METRICS_TOKEN = env_str("ZENITH_METRICS_TOKEN", "")

# --- Production refuses to start unsafe ---------------------------------------------------
# One line naming every problem and what to set, then exit status 1, before any process
# (gunicorn, a worker, a manage.py command) serves or runs anything: never a forgeable
# session key, a Host check that accepts anything, cookies sent over plain HTTP, or debug
# pages. `manage.py check --deploy` is then clean under the environment docs/operations.md
# ("Production environment") lists.


def _production_problems() -> list[str]:
    problems = []
    if DEBUG:
        problems.append("DEBUG is on (set DEBUG=false)")
    if not SECRET_KEY:
        problems.append("SECRET_KEY is not set")
    elif SECRET_KEY == DEVELOPMENT_SECRET_KEY:
        problems.append("SECRET_KEY is the development key")
    elif len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-"):
        # Django's own test (check --deploy, security.W009).
        problems.append("SECRET_KEY is too weak (at least 50 characters, 5 of them different)")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS is not set (the host names Zenith is served as, comma-separated)")
    elif "*" in ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS contains '*' (name the hosts)")
    if not SESSION_COOKIE_SECURE:
        problems.append("SESSION_COOKIE_SECURE is off (session cookies would travel over plain HTTP)")
    if not CSRF_COOKIE_SECURE:
        problems.append("CSRF_COOKIE_SECURE is off (CSRF cookies would travel over plain HTTP)")
    return problems


if PRODUCTION and (_problems := _production_problems()):
    _hint = (" A key: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
             if any(problem.startswith("SECRET_KEY") for problem in _problems) else "")
    # SystemExit, not an exception: the operator gets this one line, not a traceback.
    raise SystemExit(f"zenith: refusing to start with ZENITH_ENV=production: {'; '.join(_problems)}.{_hint}")
