"""How many batches of one job may be queued or running at once: its window (docs/design.md,
"Windows").

The optimizer's 2-4 batches per job meant that more workers sped up many concurrent jobs but
never one large job. A job's window is now the larger of the optimizer's choice and its fair
share of the live workers that serve its queue: ceil(workers / unfinished jobs of that
queue). One job alone keeps every worker busy; n jobs split the workers between them; the
cluster-wide throttle still caps the rate. An operator's explicit ZENITH_MAX_CONCURRENT_BATCHES
(recorded on the job as `fixed_window`) stays a hard cap.

The two counts are read at most once per CAPACITY_CACHE_SECONDS per process (a worker refills
its job's window in every batch commit), so a commit usually pays nothing for them. A worker
killed without unregistering stops counting once RQ's registration key expires.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from django.conf import settings
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from jobs.datatypes.registry import DataTypeSpec, registry
from jobs.models import ProcessingJob
from zenith.infra.redis import get_redis

_cache: dict[tuple[str, str], tuple[float, int]] = {}
_lock = threading.Lock()


def _cached(kind: str, key: str, read: Callable[[], int]) -> int:
    ttl = settings.ZENITH_CAPACITY_CACHE_SECONDS
    now = time.monotonic()
    with _lock:
        hit = _cache.get((kind, key))
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    value = read()
    with _lock:
        _cache[(kind, key)] = (now, value)
    return value


def forget() -> None:
    """Drops the cached counts (tests, and a process that knows they changed)."""
    with _lock:
        _cache.clear()


def live_workers(queue: str) -> int:
    """Workers registered for `queue` whose registration has not expired."""
    def read() -> int:
        redis = get_redis()
        keys = list(redis.smembers(WORKERS_BY_QUEUE_KEY % queue))
        if not keys:
            return 0
        with redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            return sum(1 for alive in pipe.execute() if alive)

    return _cached("workers", queue, read)


def competing_jobs(spec: DataTypeSpec) -> int:
    """Unfinished jobs of every data type that shares `spec`'s queue."""
    def read() -> int:
        names = [name for name, other in registry().items() if other.queue == spec.queue]
        return ProcessingJob.objects.filter(completed_at__isnull=True, data_type__in=names).count()

    return _cached("jobs", spec.queue, read)


def window_size(job: ProcessingJob, spec: DataTypeSpec, queue: str) -> int:
    """The job's window: its configured size, or more when idle workers serve its queue."""
    config = job.batch_config or {}
    configured = max(1, int(config.get("concurrent_batches") or 1))
    if config.get("fixed_window"):
        return configured
    workers = live_workers(queue)
    if workers <= configured:
        return configured
    return max(configured, math.ceil(workers / max(1, competing_jobs(spec))))
