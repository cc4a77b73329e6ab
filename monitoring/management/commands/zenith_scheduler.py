import logging
import time
import warnings

from django.core.management.base import BaseCommand
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitoring.schedules import get_scheduler, register_schedules

logger = logging.getLogger("zenith.scheduler")

MAX_BACKOFF_SECONDS = 10.0


class Command(BaseCommand):
    help = "Register Zenith's schedules, then run rq-scheduler (safe to run more than one)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=int, default=5, help="Seconds between scheduler polls.")
        parser.add_argument("--burst", action="store_true", help="Enqueue what is due, then exit.")

    def handle(self, *args, **opts):
        warnings.filterwarnings("ignore", category=FutureWarning)  # crontab's own deprecation notice
        backoff = 1.0
        while True:
            try:
                scheduler = get_scheduler(interval=opts["interval"])
                # Every (re)start registers again: a Redis that came back empty lost them.
                register_schedules(scheduler)
                backoff = 1.0
                scheduler.run(burst=opts["burst"])
                return
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # rq-scheduler's loop dies with its connection; the periodic work (the
                # reconciler above all) must outlive a Redis restart, so wait and start again.
                if opts["burst"]:
                    raise
                logger.warning("scheduler lost Redis (%s: %s); retrying in %.0f s",
                               type(exc).__name__, exc, backoff)
                time.sleep(backoff)
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
