"""Periodic work, registered idempotently with rq-scheduler.

Why rq-scheduler and not RQ's built-in cron: it takes a Redis lock so several schedulers can
run for availability without double-enqueueing, and a run missed while it was down fires once
when it comes back. Each schedule has a fixed id, so registering again (every scheduler start,
or `manage.py setup_schedules`) replaces nothing and duplicates nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal

from django.conf import settings
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from monitoring.registry import Schedule, registered_schedules
from zenith.infra.redis import get_redis

logger = logging.getLogger(__name__)




def schedules() -> list[Schedule]:
    """The health check (every ZENITH_HEALTH_INTERVAL_SECONDS) and what other apps registered
    (monitoring.registry): the jobs app adds its reconciler and its retention cleanup."""
    return [
        Schedule("zenith-health-check", "monitoring.tasks.health_check", "default-high",
                 interval=settings.ZENITH_HEALTH_INTERVAL_SECONDS, timeout=120),
        *registered_schedules(),
    ]


class ZenithScheduler(Scheduler):
    """rq-scheduler that puts Zenith's schedules back if Redis lost them (flushed, or
    restarted empty): checked at every poll while it holds the scheduler lock (three ZSCOREs),
    so the reconciler that repairs the flushed queues is back within one poll interval."""

    def _install_signal_handlers(self):
        # rq-scheduler's handler talks to Redis before exiting; when Redis is down that raised
        # a ConnectionError instead, and the command's reconnect loop would outlive SIGTERM.
        def stop(signum, frame):
            self.log.info("Shutting down the scheduler")
            try:
                self.register_death()
                self.remove_lock()
            except RedisError:
                pass
            raise SystemExit()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def enqueue_jobs(self):
        if not all(schedule.id in self for schedule in schedules()):
            register_schedules(self)
        return super().enqueue_jobs()


def get_scheduler(interval: int = 5) -> ZenithScheduler:
    return ZenithScheduler(queue_name="default", connection=get_redis(), interval=interval)


def _signature(job) -> tuple:
    return (job.func_name, job.origin, job.meta.get("cron_string"), job.meta.get("interval"))


def register_schedules(scheduler=None) -> dict[str, str]:
    """Makes the scheduler hold exactly Zenith's schedules. Returns id -> what happened."""
    scheduler = scheduler or get_scheduler()
    existing = {job.id: job for job in scheduler.get_jobs()}
    outcome = {}
    for schedule in schedules():
        current = existing.get(schedule.id)
        wanted = (schedule.func, schedule.queue, schedule.cron, schedule.interval)
        if current is not None and _signature(current) == wanted:
            outcome[schedule.id] = "unchanged"
            continue
        if current is not None:
            scheduler.cancel(current)
        if schedule.cron:
            scheduler.cron(schedule.cron, func=schedule.func, queue_name=schedule.queue, id=schedule.id,
                           timeout=schedule.timeout, use_local_timezone=False)
        else:
            scheduler.schedule(scheduled_time=dt.datetime.now(dt.UTC), func=schedule.func,
                               interval=schedule.interval, repeat=None, queue_name=schedule.queue,
                               id=schedule.id, timeout=schedule.timeout)
        outcome[schedule.id] = "replaced" if current is not None else "created"
    logger.info("schedules registered", extra={"event": "schedules.registered", **outcome})
    return outcome
