"""The worker Zenith runs: RQ's SimpleWorker with database hygiene and memory protection.

Why not RQ's default forking Worker: it forks a work horse per job, which re-imports the task
module and opens a new PostgreSQL connection each time (several times slower than
SimpleWorker at 1M items: docs/performance.md). A batch runs in the worker process itself
instead, with a persistent database connection. What the fork bought is kept another way:
- time limits: RQ's SIGALRM death penalty still raises JobTimeoutException inside the batch
  (the hard limit), and the batch engine checks the soft limit between items;
- memory leaks: the worker retires after `--max-jobs` batches (ZENITH_WORKER_MAX_JOBS) or
  once its RSS passes ZENITH_WORKER_MAX_RSS_MB, and `manage.py zenith_worker` forks a fresh one from a
  parent that already imported everything (milliseconds, not a full Django start);
- a crash or kill -9 loses nothing: the batch's heartbeat stops and the reconciler retries it.
"""

from __future__ import annotations

import logging
import time

import psutil
from django.conf import settings
from django.db import close_old_connections
from rq.worker import SimpleWorker

from zenith.infra.resources import publish, publish_worker_process, sample_local

logger = logging.getLogger(__name__)

RESOURCE_PUBLISH_SECONDS = 15


class _ShutdownFlag:
    """Set by the worker's SIGTERM handler on a warm shutdown: finish the current batch, start
    no chained one. A plain attribute, not a threading.Event: Event.set() takes a lock, and a
    second signal arriving while the first handler held it deadlocked the worker in its own
    handler (a test teardown's SIGTERM to the process group plus the pool's forwarded one)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set


SHUTDOWN = _ShutdownFlag()


class ZenithWorker(SimpleWorker):
    _last_sample = 0.0

    def heartbeat(self, timeout=None, pipeline=None):
        """RQ's heartbeat only extends the worker's key; after a Redis flush or restart the
        worker would keep working but be invisible (dashboards, liveness probes). Register
        again when the registration is gone."""
        if pipeline is None and not self.connection.sismember(self.redis_workers_keys, self.key):
            logger.warning("worker %s lost its registration in Redis; registering again", self.name)
            self.connection.delete(self.key)
            self.register_birth()
            return
        super().heartbeat(timeout, pipeline)

    def request_stop(self, signum, frame):
        """A warm shutdown: the current batch finishes, no chained batch starts after it.

        The flag is set before RQ's handler runs: when idle, RQ raises StopRequested from the
        signal handler, wherever the worker happens to be, and a broad `except Exception`
        there (publishing a resource sample, say) swallowed it. The worker then went back to
        waiting for messages and ignored the stop (test teardowns waited 20 s for SIGKILL);
        RQ's loop checks the flag before each wait."""
        SHUTDOWN.set()
        self._stop_requested = True
        return super().request_stop(signum, frame)

    def perform_job(self, job, queue) -> bool:
        close_old_connections()
        try:
            return super().perform_job(job, queue)
        finally:
            close_old_connections()
            self._after_job()

    def _after_job(self) -> None:
        now = time.monotonic()
        if now - self._last_sample > RESOURCE_PUBLISH_SECONDS:
            self._last_sample = now
            publish(sample_local())
            publish_worker_process(self.name)
        rss_mb = psutil.Process().memory_info().rss / (1024 * 1024)
        if rss_mb > settings.ZENITH_WORKER_MAX_RSS_MB:
            logger.warning("worker retiring: RSS %.0f MB over the %s MB limit", rss_mb,
                           settings.ZENITH_WORKER_MAX_RSS_MB)
            self._stop_requested = True
