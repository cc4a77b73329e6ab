import warnings

from django.core.management.base import BaseCommand

from monitoring.schedules import register_schedules


class Command(BaseCommand):
    help = "Register Zenith's periodic jobs with rq-scheduler (idempotent)."

    def handle(self, *args, **opts):
        warnings.filterwarnings("ignore", category=FutureWarning)  # crontab's own deprecation notice
        for schedule_id, outcome in register_schedules().items():
            self.stdout.write(f"{schedule_id}: {outcome}")
