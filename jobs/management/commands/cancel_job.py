"""`manage.py cancel_job ID`"""

from django.core.management.base import BaseCommand, CommandError

from jobs.errors import ZenithError, sentence
from jobs.management.commands._common import get_job
from jobs.services import cancel_job


class Command(BaseCommand):
    help = "Cancel a job: queued batches never start, running ones stop within seconds."

    def add_arguments(self, parser):
        parser.add_argument("job_id")

    def handle(self, *args, **opts):
        job = get_job(opts["job_id"])
        try:
            job = cancel_job(job.id)
        except ZenithError as exc:
            raise CommandError(sentence(exc)) from None
        final = "final" if job.completed_at else "running batches are stopping"
        self.stdout.write(f"job {job.id} cancelled ({final}): {job.items_processed:,} processed, "
                          f"{job.items_failed:,} failed, {job.items_skipped:,} skipped")
