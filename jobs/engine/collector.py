"""A Prometheus collector that reads Zenith's state at scrape time.

Registered once in the web process (monitoring.apps), and in the registry /metrics builds
under gunicorn's multiprocess mode (monitoring.views). Each scrape reads the Redis event
counters written by every worker (zenith.infra.metrics) and the current state from PostgreSQL
and Redis, so the numbers are the cluster's, not the web process's. A part that cannot be
read (Redis down) is left out of that scrape instead of failing it.
"""

from __future__ import annotations

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from zenith.infra import metrics

logger = logging.getLogger(__name__)

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class JobsCollector:
    def collect(self):
        for part in (self._events, self._durations, self._queues, self._jobs, self._breakers, self._workers):
            try:
                yield from part()
            except Exception:
                logger.warning("metrics part %s unavailable", part.__name__, exc_info=True)

    def describe(self):
        return []

    def _events(self):
        from zenith.infra.redis import get_redis

        raw = {_text(k): _text(v) for k, v in get_redis().hgetall(metrics.COUNTERS_KEY).items()}
        items = CounterMetricFamily(
            "zenith_items", "Items of batches that ended, by data type and outcome (processed, failed, skipped); "
            "counted once per batch end with its final counts.", labels=["data_type", "outcome"])
        batches = CounterMetricFamily("zenith_batches", "Batches that ended, by data type and final status "
                                      "(succeeded, dead, cancelled).", labels=["data_type", "status"])
        runs = CounterMetricFamily("zenith_batch_runs", "Runs (attempts) of batches, by data type and outcome "
                                   "(succeeded, retrying, error, timeout).", labels=["data_type", "outcome"])
        attempts = CounterMetricFamily("zenith_item_attempts", "Item attempts in batch runs, by data type "
                                       "(the error-rate alert's denominator).", labels=["data_type"])
        system_errors = CounterMetricFamily("zenith_item_system_errors", "Item attempts lost to exceptions, by data "
                                            "type; validation rejects excluded.", labels=["data_type"])
        jobs = CounterMetricFamily("zenith_jobs_finished", "Jobs finalized, by data type and final status.",
                                   labels=["data_type", "status"])
        waits = CounterMetricFamily("zenith_throttle_waits", "Batches that waited for the cluster-wide throttle.",
                                    labels=["data_type", "action"])
        wait_seconds = CounterMetricFamily("zenith_throttle_wait_seconds", "Seconds batches waited for the throttle.",
                                           labels=["data_type"])
        families = {"items": items, "batch_runs": runs, "item_attempts": attempts,
                    "item_system_errors": system_errors, "jobs": jobs, "throttle": waits,
                    "throttle_seconds": wait_seconds}
        for key, value in sorted(raw.items()):
            kind, *labels = key.split("|")
            if kind == "batches":
                # Only terminal statuses: fields of per-run statuses written by older versions
                # (before zenith_batch_runs) are left out.
                if labels[-1] in metrics.END_STATUSES:
                    batches.add_metric(labels, float(value))
            elif kind in families:
                families[kind].add_metric(labels, float(value))
        yield from (items, batches, runs, attempts, system_errors, jobs, waits, wait_seconds)

    def _durations(self):
        from zenith.infra.redis import get_redis

        raw = {_text(k): _text(v) for k, v in get_redis().hgetall(metrics.HISTOGRAM_KEY).items()}
        family = HistogramMetricFamily("zenith_batch_duration_seconds", "Wall time of batch runs (every attempt).",
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
        from jobs.selectors.core import backlog_totals
        from monitoring.health import queue_depths

        depth = GaugeMetricFamily("zenith_queue_depth", "Messages waiting in each RQ queue (mostly batches "
                                  "already in zenith_backlog_batches).", labels=["queue"])
        for name, count in queue_depths().items():
            depth.add_metric([name], count)
        yield depth
        backlog = backlog_totals()
        # The queue depth the alerts use: every batch not yet ended counted once, wherever it
        # waits (pending in PostgreSQL, queued in RQ, retrying, running). Do not add
        # zenith_queue_depth to it: those messages are (mostly) these same batches.
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
        from jobs.datatypes.registry import known_data_types
        from jobs.engine import breaker
        from zenith.infra.redis import get_redis

        family = GaugeMetricFamily("zenith_circuit_breaker_state",
                                   "Circuit breaker per data type: 0 closed, 1 half-open, 2 open.",
                                   labels=["data_type"])
        redis = get_redis()
        for name in known_data_types():
            family.add_metric([name], BREAKER_VALUES.get(breaker.status(redis, name)["state"], 0))
        yield family

    def _workers(self):
        from rq import Worker

        from zenith.infra.redis import get_redis
        from zenith.infra.resources import host_samples, worker_process_samples

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
