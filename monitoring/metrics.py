"""Zenith's own Prometheus metrics, correct across many worker processes and hosts.

Workers are separate processes (and machines), so in-process prometheus_client counters in a
worker would never reach the web's /metrics. Event counters (items, batches, durations,
throttle waits) are therefore kept in Redis hashes with HINCRBY, one pipelined round trip per
batch, and read by a collector at scrape time; states (queue depth, jobs by status, breaker,
workers) are read from PostgreSQL and Redis at scrape time too. A Redis flush resets the
counters, which Prometheus's rate() treats as a counter reset.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)

COUNTERS_KEY = "zenith:metrics:counters"
HISTOGRAM_KEY = "zenith:metrics:batch_seconds"
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _redis():
    from jobs.redis import get_redis

    return get_redis()


MINUTE_KEY = "zenith:metrics:minute:{minute}"


def batch_finished(data_type: str, status: str, seconds: float, processed: int, failed: int,
                   system_errors: int = 0) -> None:
    """Counts one run of a batch. `system_errors` are items lost to exceptions (not to
    validation); they feed the error-rate alert through per-minute buckets."""
    try:
        pipe = _redis().pipeline(transaction=False)
        minute = MINUTE_KEY.format(minute=int(time.time() // 60))
        pipe.hincrby(minute, "attempted", processed + failed if status != "error" else system_errors)
        pipe.hincrby(minute, "errors", system_errors)
        pipe.expire(minute, 7200)
        pipe.hincrby(COUNTERS_KEY, f"items|{data_type}|processed", processed)
        pipe.hincrby(COUNTERS_KEY, f"items|{data_type}|failed", failed)
        pipe.hincrby(COUNTERS_KEY, f"batches|{data_type}|{status}", 1)
        for bound in DURATION_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(HISTOGRAM_KEY, f"{data_type}|{bound}", 1)
                break
        pipe.hincrby(HISTOGRAM_KEY, f"{data_type}|count", 1)
        pipe.hincrbyfloat(HISTOGRAM_KEY, f"{data_type}|sum", seconds)
        pipe.execute()
    except Exception:
        logger.debug("metrics not recorded", exc_info=True)


def batch_dead_lettered(data_type: str) -> None:
    _incr(f"batches|{data_type}|dead")


def job_finished(data_type: str, status: str) -> None:
    _incr(f"jobs|{data_type}|{status}")


def throttle_wait(data_type: str, seconds: float, *, deferred: bool) -> None:
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.hincrby(COUNTERS_KEY, f"throttle|{data_type}|{'deferred' if deferred else 'slept'}", 1)
        pipe.hincrbyfloat(COUNTERS_KEY, f"throttle_seconds|{data_type}", seconds)
        pipe.execute()
    except Exception:
        logger.debug("metrics not recorded", exc_info=True)


def _incr(field: str, amount: int = 1) -> None:
    try:
        _redis().hincrby(COUNTERS_KEY, field, amount)
    except Exception:
        logger.debug("metrics not recorded", exc_info=True)


def recent_error_rate(window_seconds: int) -> tuple[float, int]:
    """(system-error share, item attempts) over the last `window_seconds`."""
    now_minute = int(time.time() // 60)
    minutes = max(1, window_seconds // 60)
    pipe = _redis().pipeline(transaction=False)
    for minute in range(now_minute - minutes + 1, now_minute + 1):
        pipe.hmget(MINUTE_KEY.format(minute=minute), "attempted", "errors")
    attempted = errors = 0
    for values in pipe.execute():
        attempted += int(values[0] or 0)
        errors += int(values[1] or 0)
    return (errors / attempted if attempted else 0.0), attempted
