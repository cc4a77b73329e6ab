"""`manage.py job_status ID` (a unique prefix of the id is enough)."""

from django.core.management.base import BaseCommand

from jobs.management.commands._common import dumps, get_job, job_summary


class Command(BaseCommand):
    help = "Show a job's status, counts, throughput and ETA as JSON."

    def add_arguments(self, parser):
        parser.add_argument("job_id")

    def handle(self, *args, **opts):
        self.stdout.write(dumps(job_summary(get_job(opts["job_id"]))))
