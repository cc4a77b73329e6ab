"""Probes and metrics for orchestrators and Prometheus."""

from __future__ import annotations

import functools
import hmac
import os

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database and Redis reachable, migrations applied. 503 names what fails."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
        plan = MigrationExecutor(connection).migration_plan(MigrationExecutor(connection).loader.graph.leaf_nodes())
        checks["migrations"] = "ok" if not plan else f"{len(plan)} unapplied"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


@never_cache
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: django-prometheus's request/DB metrics plus Zenith's own.
    With ZENITH_METRICS_TOKEN set, scrapers must send `Authorization: Bearer <token>`. The
    series name hosts and processes, so without a token the view is open in development only:
    in production it stays closed until a token is configured."""
    token = settings.ZENITH_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            response = HttpResponse("metrics token required\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif settings.ZENITH_ENV != "development":
        return HttpResponse("metrics are closed: set ZENITH_METRICS_TOKEN and scrape with it as a bearer token\n",
                            status=403, content_type="text/plain")
    if _multiprocess():
        return HttpResponse(generate_latest(_multiprocess_registry()), content_type=CONTENT_TYPE_LATEST)
    return ExportToDjangoView(request)


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir"))


@functools.cache
def _multiprocess_registry() -> CollectorRegistry:
    """Under gunicorn with several worker processes (zenith/gunicorn_conf.py turns on
    prometheus_client's multiprocess mode), the request/DB metrics of every web process are
    summed from the shared directory, so a scrape gives the same totals whichever process
    answers it. The collectors registered with monitoring.registry read Redis and PostgreSQL, so they are
    added as they are."""
    from prometheus_client import multiprocess

    from monitoring.registry import collectors

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in collectors():
        registry.register(collector)
    return registry
