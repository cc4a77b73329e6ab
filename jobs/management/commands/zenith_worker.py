"""`manage.py zenith_worker`: a supervised pool of Zenith workers plus RQ's scheduler.

The parent imports Django and the task modules once, then forks:
- N worker processes (ZenithWorker, one batch at a time each), each retired after
  `--max-jobs` batches or when over its memory limit and immediately replaced by a new fork;
- one RQ scheduler process (delayed retries, throttle and breaker deferrals), kept out of the
  recycled workers so recycling never pauses it.
SIGTERM or SIGINT asks every worker for a warm shutdown (finish the current batch, then exit),
which is what a rolling update or a scale-down needs; a second signal forces it (the batch is
then handed back to the queue by the worker itself).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from jobs.engine.dispatch import worker_queue_names

logger = logging.getLogger("zenith.worker_pool")

# An idle worker renews its registration (heartbeat) every WORKER_TTL - 15 seconds.
WORKER_TTL = 60


class Command(BaseCommand):
    help = "Run a supervised pool of Zenith workers (and RQ's scheduler) on Zenith's queues."

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", help="Queues in priority order (default: all Zenith queues).")
        parser.add_argument("--processes", type=int, default=int(os.environ.get("ZENITH_WORKER_PROCESSES", 2)))
        parser.add_argument("--max-jobs", type=int, default=settings.ZENITH_WORKER_MAX_JOBS,
                            help="Retire a worker after this many batches (0 = never).")
        parser.add_argument("--burst", action="store_true", help="Exit once the queues are empty.")
        parser.add_argument("--no-scheduler", action="store_true", help="Do not run RQ's scheduler here.")
        parser.add_argument("--logging-level", default="WARNING")

    def handle(self, *args, **options):
        import jobs.tasks  # noqa: F401  # imported once here, inherited by every fork
        from jobs.engine.worker import ZenithWorker  # noqa: F401

        queues = options["queues"] or worker_queue_names()
        pool = _Pool(queues, options["processes"], options["max_jobs"] or None, options["burst"],
                     not options["no_scheduler"], options["logging_level"])
        pool.run()


def _release_database() -> None:
    """Leaves this process with no database connection and no open psycopg pool, so a fork
    inherits neither.

    `connections.close_all()` alone only hands a pooled connection back to its pool: the pool
    stays open (its connections and threads included), and a child forked then would take
    the parent's sockets from its copy of the pool, two processes on one PostgreSQL session.
    Closing or dropping them in the child instead would end the parent's sessions (libpq
    sends Terminate on the shared socket), so it is the parent that lets go, before forking;
    each child then opens its own pool on first use."""
    for connection in connections.all():
        connection.close()
        if getattr(connection, "close_pool", None) and connection.settings_dict["OPTIONS"].get("pool"):
            connection.close_pool()


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class _Pool:
    def __init__(self, queues, processes, max_jobs, burst, with_scheduler, logging_level):
        self.queues = queues
        self.processes = max(1, processes)
        self.max_jobs = max_jobs
        self.burst = burst
        self.with_scheduler = with_scheduler
        self.logging_level = logging_level
        self.workers: dict[int, int] = {}  # pid -> slot
        self.scheduler_pid: int | None = None
        self.stopping = False
        self.signals = 0

    def run(self) -> None:
        _release_database()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.processes):
            self._spawn_worker(slot)
        if self.with_scheduler:
            self._spawn_scheduler()
        while self.workers or (self.scheduler_pid and not self.burst and not self.stopping):
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == self.scheduler_pid:
                self.scheduler_pid = None
                if not self.stopping and not self.burst:
                    time.sleep(0.5)
                    self._spawn_scheduler()
                continue
            slot = self.workers.pop(pid, None)
            if slot is not None and not self.stopping and not self.burst:
                self._spawn_worker(slot)
        if self.scheduler_pid:
            self._kill(self.scheduler_pid, signal.SIGTERM)
            try:
                os.waitpid(self.scheduler_pid, 0)
            except ChildProcessError:
                pass

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True
        self.signals += 1
        for pid in list(self.workers):
            self._kill(pid, signal.SIGTERM if self.signals == 1 else signal.SIGINT)
        if self.scheduler_pid:
            self._kill(self.scheduler_pid, signal.SIGTERM)

    @staticmethod
    def _kill(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _fork(self, target) -> int:
        """Forks a child running `target`. Returns with SIGTERM/SIGINT still blocked: the
        caller records the pid, then calls _unblock(), so a stop signal that arrives in
        between is handled once the child is known and reaches it too (before, a replacement
        forked at that moment never got the signal and the pool waited for it forever)."""
        _release_database()
        sys.stdout.flush()
        sys.stderr.flush()
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _unblock()
                connections.close_all()
                target()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            except BaseException:
                logger.exception("worker process crashed")
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        return pid

    def _spawn_worker(self, slot: int) -> None:
        pid = self._fork(self._work)
        self.workers[pid] = slot
        _unblock()
        if self.stopping:  # the stop came after the caller's check and before the fork
            self._kill(pid, signal.SIGTERM)

    def _spawn_scheduler(self) -> None:
        self.scheduler_pid = self._fork(self._schedule)
        _unblock()

    def _work(self) -> None:
        if settings.ZENITH_WORKER_NICE:
            os.nice(settings.ZENITH_WORKER_NICE)
        from jobs.engine.dispatch import get_queue
        from jobs.engine.worker import ZenithWorker
        from zenith.infra.redis import get_redis

        queues = [get_queue(name) for name in self.queues]
        worker = ZenithWorker(queues, connection=get_redis(),
                              name=f"{socket.gethostname()}.{os.getpid()}", maintenance_interval=60,
                              worker_ttl=WORKER_TTL)
        worker.work(burst=self.burst, max_jobs=self.max_jobs, with_scheduler=False,
                    logging_level=self.logging_level)

    def _schedule(self) -> None:
        from rq.scheduler import RQScheduler

        from zenith.infra.redis import get_redis

        scheduler = RQScheduler(self.queues, connection=get_redis(), interval=1, logging_level=self.logging_level)
        scheduler.acquire_locks()
        scheduler.work()
