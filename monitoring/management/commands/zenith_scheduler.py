import warnings

from django.core.management.base import BaseCommand

from monitoring.schedules import get_scheduler, register_schedules


class Command(BaseCommand):
    help = "Register Zenith's schedules, then run rq-scheduler (safe to run more than one)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=int, default=5, help="Seconds between scheduler polls.")
        parser.add_argument("--burst", action="store_true", help="Enqueue what is due, then exit.")

    def handle(self, *args, **opts):
        warnings.filterwarnings("ignore", category=FutureWarning)  # crontab's own deprecation notice
        scheduler = get_scheduler(interval=opts["interval"])
        register_schedules(scheduler)
        scheduler.run(burst=opts["burst"])
