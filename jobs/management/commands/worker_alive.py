"""`manage.py worker_alive`: exit 0 when a Zenith worker on this host has a fresh heartbeat in
Redis, 1 otherwise. The liveness probe of worker containers (a hung worker stops beating)."""

from __future__ import annotations

import datetime as dt
import socket
import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from rq import Worker

from zenith.infra.redis import get_redis


class Command(BaseCommand):
    help = "Exit 0 if a worker on this host sent a heartbeat to Redis recently, else 1."

    def add_arguments(self, parser):
        # An idle worker beats every ~45 s; a busy one only between batches, so a fresh
        # heartbeat may be as old as the longest batch (the hard time limit) plus a margin.
        parser.add_argument("--max-age", type=float, default=settings.ZENITH_TIME_LIMIT + 90,
                            help="Seconds a heartbeat stays fresh (default: time limit + 90).")
        parser.add_argument("--hostname", default=socket.gethostname())

    def handle(self, *args, **opts):
        now = dt.datetime.now(dt.UTC)
        try:
            workers = Worker.all(connection=get_redis())
        except Exception as exc:
            self.stderr.write(f"redis unreachable: {exc}")
            sys.exit(1)
        for worker in workers:
            beat = worker.last_heartbeat
            if worker.hostname != opts["hostname"] or beat is None:
                continue
            if beat.tzinfo is None:
                beat = beat.replace(tzinfo=dt.UTC)
            age = (now - beat).total_seconds()
            if age <= opts["max_age"]:
                self.stdout.write(f"alive: {worker.name} (heartbeat {age:.0f}s ago, state {worker.get_state()})")
                return
        self.stderr.write(f"no worker on {opts['hostname']} with a heartbeat in the last {opts['max_age']:g}s")
        sys.exit(1)
