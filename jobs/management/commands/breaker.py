"""`manage.py breaker [list | open T | close T | auto T]`"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from jobs.datatypes.registry import get_data_type, known_data_types
from jobs.engine import breaker
from jobs.services import force_breaker
from zenith.infra.redis import get_redis


class Command(BaseCommand):
    help = "Show the circuit breakers, or force one open / closed / back to automatic."

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", default="list", choices=["list", "open", "close", "auto"])
        parser.add_argument("data_type", nargs="?")

    def handle(self, *args, **opts):
        if opts["action"] != "list":
            if not opts["data_type"]:
                self.stderr.write("give the data type, e.g. manage.py breaker open transaction")
                raise SystemExit(2)
            name = get_data_type(opts["data_type"]).name
            force_breaker(name, {"open": "open", "close": "closed", "auto": "auto"}[opts["action"]])
        redis = get_redis()
        for name in known_data_types():
            state = breaker.status(redis, name)
            forced = " (forced)" if state["forced"] else ""
            reason = f" - {state['reason']}" if state["reason"] else ""
            self.stdout.write(f"{name:<16} {state['state']}{forced}{reason}")
