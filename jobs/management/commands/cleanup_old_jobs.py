import json

from django.core.management.base import BaseCommand

from jobs.services.retention import cleanup_old_jobs


class Command(BaseCommand):
    help = "Delete finished jobs older than the retention period (ZENITH_RETENTION_DAYS)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, **opts):
        self.stdout.write(json.dumps(cleanup_old_jobs(opts["days"])))
