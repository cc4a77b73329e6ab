"""The periodic health check and its thresholds (docs/design.md, "Monitoring").

Every 300 s it samples the host (CPU, available memory, I/O wait), the backlog per queue, the
recent system-error rate and the workers' hosts, publishes the sample to Redis for the batch
optimizer and the dashboard, and raises or resolves one alert per condition. Alerts are
episodes (monitoring.alerts): a condition that lasts an hour is announced once, not twelve
times.
"""

from __future__ import annotations

import dataclasses
import logging

import psutil
from django.conf import settings
from rq import Queue

from monitoring import alerts, registry
from monitoring.models import AlertLevel
from zenith.infra import metrics
from zenith.infra.redis import get_redis
from zenith.infra.resources import SystemResources, host_samples, publish, sample_local

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class HealthReport:
    resources: SystemResources
    queue_depths: dict[str, int]
    backlog_batches: int
    error_rate: float
    error_attempts: int
    worker_hosts: dict[str, float]
    alerts: list[dict]

    @property
    def status(self) -> str:
        if any(a["level"] == AlertLevel.CRITICAL for a in self.alerts):
            return "critical"
        return "warning" if self.alerts else "healthy"

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["status"] = self.status
        return data


def sample_blocking(seconds: float = 1.0) -> SystemResources:
    """One blocking sample over `seconds` (CPU busy share and I/O wait from the same window)."""
    times = psutil.cpu_times_percent(interval=seconds)
    sample = sample_local()
    sample.cpu_percent = round(100.0 - times.idle, 1)
    sample.disk_io_wait = round(getattr(times, "iowait", 0.0), 1)
    return sample


def queue_depths() -> dict[str, int]:
    return {name: Queue(name, connection=get_redis()).count for name in settings.RQ_QUEUES}


def worker_host_cpu() -> dict[str, float]:
    return {host: sample.cpu_percent for host, sample in host_samples().items()}


def evaluate(report_sample: SystemResources, depth_total: int, error_rate: float, attempts: int,
             hosts: dict[str, float]) -> list[dict]:
    """The conditions that hold now, each as {key, level, message, value}."""
    t = settings.ZENITH_ALERT_THRESHOLDS
    found = []

    def add(key, level, message, value):
        found.append({"key": key, "level": level, "message": message, "value": value})

    if report_sample.cpu_percent > t["cpu_critical"]:
        add("cpu", AlertLevel.CRITICAL, f"CPU usage critically high ({report_sample.cpu_percent:.0f}%)",
            report_sample.cpu_percent)
    if report_sample.memory_available_gb < t["memory_critical_gb"]:
        add("memory", AlertLevel.CRITICAL,
            f"Available memory critically low ({report_sample.memory_available_gb:.2f} GB)",
            report_sample.memory_available_gb)
    if report_sample.disk_io_wait > t["iowait_warning"]:
        add("disk_io", AlertLevel.WARNING, f"High disk I/O wait time ({report_sample.disk_io_wait:.0f}%)",
            report_sample.disk_io_wait)
    if depth_total > t["queue_critical"]:
        add("queue_depth", AlertLevel.CRITICAL, f"Queue depth critical: {depth_total:,} batches waiting", depth_total)
    elif depth_total > t["queue_warning"]:
        add("queue_depth", AlertLevel.WARNING, f"Queue depth high: {depth_total:,} batches waiting", depth_total)
    if attempts:
        window = t["error_rate_window_seconds"] // 60
        if error_rate > t["error_rate_critical"]:
            add("error_rate", AlertLevel.CRITICAL,
                f"Error rate critical: {error_rate:.1%} of {attempts:,} items in {window} min", error_rate)
        elif error_rate > t["error_rate_warning"]:
            add("error_rate", AlertLevel.WARNING,
                f"Error rate high: {error_rate:.1%} of {attempts:,} items in {window} min", error_rate)
    hot = {host: cpu for host, cpu in hosts.items() if cpu > t["worker_cpu_warning"]}
    if hot:
        add("worker_cpu", AlertLevel.WARNING,
            "Worker CPU above {:.0f}% on {}".format(t["worker_cpu_warning"], ", ".join(sorted(hot))), hot)
    return found


CONDITION_KEYS = ("cpu", "memory", "disk_io", "queue_depth", "error_rate", "worker_cpu")


def health_check(sample_seconds: float = 1.0) -> HealthReport:
    resources = sample_blocking(sample_seconds)
    publish(resources)
    depths = queue_depths()
    backlog = registry.backlog()["batches"]
    rate, attempts = metrics.recent_error_rate(settings.ZENITH_ALERT_THRESHOLDS["error_rate_window_seconds"])
    hosts = worker_host_cpu()
    # Queue depth is the backlog: every batch of an unfinished job that has not ended, counted
    # once wherever it waits (pending in PostgreSQL, or queued, retrying or running with a
    # message in RQ). The RQ queue sizes are reported, not added: their messages are mostly
    # these same batches.
    found = evaluate(resources, backlog, rate, attempts, hosts)
    active = {c["key"] for c in found}
    for condition in found:
        alerts.raise_alert(condition["key"], condition["level"], condition["message"],
                           {"value": condition["value"]})
    for key in CONDITION_KEYS:
        if key not in active:
            alerts.resolve_alert(key)
    alerts.resolve_closed_breakers()
    report = HealthReport(resources, depths, backlog, round(rate, 4), attempts, hosts, found)
    logger.info(
        "health check", extra={"event": "health.checked", "status": report.status,
                               "cpu": resources.cpu_percent, "memory_gb": round(resources.memory_available_gb, 2),
                               "iowait": resources.disk_io_wait, "backlog": backlog, "error_rate": rate})
    return report
