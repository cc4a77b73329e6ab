"""A Prometheus collector that reads Zenith's state at scrape time.

Registered once in the web process (monitoring.apps). Each scrape reads the Redis event
counters written by every worker (monitoring.metrics) and the current state from PostgreSQL
and Redis, so the numbers are the cluster's, not the web process's. A part that cannot be
read (Redis down) is left out of that scrape instead of failing it.
"""

from __future__ import annotations

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from . import metrics

logger = logging.getLogger(__name__)

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ZenithCollector:
    def collect(self):
        for part in (self._events, self._durations, self._queues, self._jobs, self._breakers, self._workers):
            try:
                yield from part()
            except Exception:
                logger.warning("metrics part %s unavailable", part.__name__, exc_info=True)

    def describe(self):
        return []

    def _events(self):
        from jobs.redis import get_redis

        raw = {_text(k): _text(v) for k, v in get_redis().hgetall(metrics.COUNTERS_KEY).items()}
        items = CounterMetricFamily("zenith_items", "Items finished, by data type and outcome.",
                                    labels=["data_type", "outcome"])
        batches = CounterMetricFamily("zenith_batches", "Batch runs, by data type and how they ended.",
                                      labels=["data_type", "status"])
        jobs = CounterMetricFamily("zenith_jobs_finished", "Jobs finalized, by data type and final status.",
                                   labels=["data_type", "status"])
        waits = CounterMetricFamily("zenith_throttle_waits", "Batches that waited for the cluster-wide throttle.",
                                    labels=["data_type", "action"])
        wait_seconds = CounterMetricFamily("zenith_throttle_wait_seconds", "Seconds batches waited for the throttle.",
                                           labels=["data_type"])
        for key, value in sorted(raw.items()):
            kind, *labels = key.split("|")
            if kind == "items":
                items.add_metric(labels, float(value))
            elif kind == "batches":
                batches.add_metric(labels, float(value))
            elif kind == "jobs":
                jobs.add_metric(labels, float(value))
            elif kind == "throttle":
                waits.add_metric(labels, float(value))
            elif kind == "throttle_seconds":
                wait_seconds.add_metric(labels, float(value))
        yield from (items, batches, jobs, waits, wait_seconds)

    def _durations(self):
        from jobs.redis import get_redis

        raw = {_text(k): _text(v) for k, v in get_redis().hgetall(metrics.HISTOGRAM_KEY).items()}
        family = HistogramMetricFamily("zenith_batch_duration_seconds", "Wall time of batch runs.",
                                       labels=["data_type"])
        data_types = sorted({key.split("|", 1)[0] for key in raw})
        for data_type in data_types:
            cumulative, buckets = 0.0, []
            for bound in metrics.DURATION_BUCKETS:
                cumulative += float(raw.get(f"{data_type}|{bound}", 0))
                buckets.append((str(bound), cumulative))
            count = float(raw.get(f"{data_type}|count", 0))
            buckets.append(("+Inf", count))
            family.add_metric([data_type], buckets, float(raw.get(f"{data_type}|sum", 0)))
        yield family

    def _queues(self):
        from jobs.selectors import backlog_totals
        from monitoring.health import queue_depths

        depth = GaugeMetricFamily("zenith_queue_depth", "Messages waiting in each RQ queue.", labels=["queue"])
        for name, count in queue_depths().items():
            depth.add_metric([name], count)
        yield depth
        backlog = backlog_totals()
        yield GaugeMetricFamily("zenith_backlog_batches", "Batches of unfinished jobs not yet ended.",
                                value=backlog["batches"])
        yield GaugeMetricFamily("zenith_backlog_items", "Items of unfinished jobs not yet ended.",
                                value=backlog["items"])

    def _jobs(self):
        from django.db.models import Count

        from jobs.models import JobStatus, ProcessingJob

        family = GaugeMetricFamily("zenith_jobs", "Jobs by status.", labels=["status"])
        counts = dict(ProcessingJob.objects.values_list("status").annotate(n=Count("id")))
        for status in JobStatus.values:
            family.add_metric([status], counts.get(status, 0))
        yield family

    def _breakers(self):
        from jobs import breaker
        from jobs.datatypes.registry import known_data_types
        from jobs.redis import get_redis

        family = GaugeMetricFamily("zenith_circuit_breaker_state",
                                   "Circuit breaker per data type: 0 closed, 1 half-open, 2 open.",
                                   labels=["data_type"])
        redis = get_redis()
        for name in known_data_types():
            family.add_metric([name], BREAKER_VALUES.get(breaker.status(redis, name)["state"], 0))
        yield family

    def _workers(self):
        from rq import Worker

        from jobs.redis import get_redis
        from monitoring.resources import host_samples, worker_process_samples

        yield GaugeMetricFamily("zenith_workers", "RQ workers registered.", value=Worker.count(get_redis()))
        cpu = GaugeMetricFamily("zenith_host_cpu_percent", "CPU busy share of hosts running Zenith.",
                                labels=["host"])
        memory = GaugeMetricFamily("zenith_host_memory_available_bytes", "Available memory of those hosts.",
                                   labels=["host"])
        for host, sample in host_samples().items():
            cpu.add_metric([host], sample.cpu_percent)
            memory.add_metric([host], sample.memory_available_gb * 1024 ** 3)
        proc_cpu = GaugeMetricFamily("zenith_worker_cpu_percent", "CPU use of each worker process.",
                                     labels=["worker"])
        proc_rss = GaugeMetricFamily("zenith_worker_rss_bytes", "Resident memory of each worker process.",
                                     labels=["worker"])
        for worker, sample in worker_process_samples().items():
            proc_cpu.add_metric([worker], sample["cpu_percent"])
            proc_rss.add_metric([worker], sample["rss_bytes"])
        yield from (cpu, memory, proc_cpu, proc_rss)
