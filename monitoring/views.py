"""Probes and metrics for orchestrators and Prometheus."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView


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
    With ZENITH_METRICS_TOKEN set, scrapers must send `Authorization: Bearer <token>`."""
    token = settings.ZENITH_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    return ExportToDjangoView(request)
