"""Zenith's own Prometheus metrics, correct across many worker processes and hosts.

Workers are separate processes (and machines), so in-process prometheus_client counters in a
worker would never reach the web's /metrics. Event counters (items, batches, runs,
durations, throttle waits) are therefore kept in Redis hashes with HINCRBY, one pipelined
round trip per event, and read by a collector at scrape time; states (queue depth, jobs by
status, breaker, workers) are read from PostgreSQL and Redis at scrape time too. A Redis
flush resets the counters, which Prometheus's rate() treats as a counter reset.

Two kinds of batch events, kept apart so that the counters agree with the database:

- a *run* of a batch (`batch_run`, every attempt): `zenith_batch_runs` by outcome, the
  duration histogram, and the item attempts and item system errors behind the error-rate
  alert (the same numbers feed Zenith's own health check through per-minute buckets);
- the *end* of a batch (`batch_ended`, its terminal transition: committed as succeeded,
  dead-lettered, cancelled): `zenith_batches` by final status and `zenith_items` by outcome
  with the batch's final counts. Callers record it with transaction.on_commit, so a rolled
  back transition counts nothing. An item that raised, was retried and then succeeded counts
  once, as processed, like in the job's counters.

Counters cannot go down: when an operator re-runs a batch that had ended (a dead-lettered
batch, or the failed items of a succeeded one), the batch counts again, with its final
counts, when it ends again (also when the job is cancelled during the re-run and the batch
returns to `succeeded` with what it had). The totals then exceed the job's own figures by
what was re-run; for jobs without operator re-runs they are equal.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)

COUNTERS_KEY = "zenith:metrics:counters"
HISTOGRAM_KEY = "zenith:metrics:batch_seconds"
MINUTE_KEY = "zenith:metrics:minute:{minute}"
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
END_STATUSES = ("succeeded", "dead", "cancelled")


def _redis():
    from zenith.infra.redis import get_redis

    return get_redis()


def batch_run(data_type: str, outcome: str, seconds: float, attempted: int, system_errors: int) -> None:
    """One run of a batch ended (`outcome`: succeeded, retrying, error or timeout).
    `attempted` items were tried in it; `system_errors` of them were lost to exceptions (never
    to validation: a rejected record is bad data, not a system error)."""
    try:
        pipe = _redis().pipeline(transaction=False)
        minute = MINUTE_KEY.format(minute=int(time.time() // 60))
        pipe.hincrby(minute, "attempted", attempted)
        pipe.hincrby(minute, "errors", system_errors)
        pipe.expire(minute, 7200)
        pipe.hincrby(COUNTERS_KEY, f"item_attempts|{data_type}", attempted)
        pipe.hincrby(COUNTERS_KEY, f"item_system_errors|{data_type}", system_errors)
        pipe.hincrby(COUNTERS_KEY, f"batch_runs|{data_type}|{outcome}", 1)
        for bound in DURATION_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(HISTOGRAM_KEY, f"{data_type}|{bound}", 1)
                break
        pipe.hincrby(HISTOGRAM_KEY, f"{data_type}|count", 1)
        pipe.hincrbyfloat(HISTOGRAM_KEY, f"{data_type}|sum", seconds)
        pipe.execute()
    except Exception:
        logger.debug("metrics not recorded", exc_info=True)


def batch_ended(data_type: str, status: str, processed: int = 0, failed: int = 0, skipped: int = 0,
                batches: int = 1) -> None:
    """`batches` batches reached a terminal `status` (succeeded, dead, cancelled) with these
    final item counts (summed over them). Call it from transaction.on_commit."""
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.hincrby(COUNTERS_KEY, f"batches|{data_type}|{status}", batches)
        pipe.hincrby(COUNTERS_KEY, f"items|{data_type}|processed", processed)
        pipe.hincrby(COUNTERS_KEY, f"items|{data_type}|failed", failed)
        pipe.hincrby(COUNTERS_KEY, f"items|{data_type}|skipped", skipped)
        pipe.execute()
    except Exception:
        logger.debug("metrics not recorded", exc_info=True)


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
    """(system-error share, item attempts) over the last `window_seconds`: the per-minute
    buckets of the counters exported as zenith_item_system_errors / zenith_item_attempts."""
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
