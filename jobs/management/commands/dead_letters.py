"""`manage.py dead_letters [--job ID] [--requeue] [--batch N ...] [--tracebacks]`"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from jobs.errors import ZenithError, sentence
from jobs.management.commands._common import get_job
from jobs.selectors import core as selectors
from jobs.services import requeue_dead_batches


class Command(BaseCommand):
    help = "List dead-lettered batches with each failed attempt's error; optionally re-queue them."

    def add_arguments(self, parser):
        parser.add_argument("--job", help="Only this job (id or unique prefix).")
        parser.add_argument("--batch", type=int, action="append", help="Batch number within --job (repeatable).")
        parser.add_argument("--requeue", action="store_true", help="Re-queue the listed batches.")
        parser.add_argument("--tracebacks", action="store_true", help="Print each attempt's traceback too.")

    def handle(self, *args, **opts):
        batches = selectors.dead_letters().prefetch_related("failed_attempts")
        job = get_job(opts["job"]) if opts["job"] else None
        if job:
            batches = batches.filter(job=job)
        if opts["batch"]:
            if not job:
                raise CommandError("--batch needs --job")
            batches = batches.filter(number__in=opts["batch"])
        batches = list(batches)
        if not batches:
            self.stdout.write("No dead-lettered batches.")
            return
        for batch in batches:
            self.stdout.write(f"job {batch.job_id} ({batch.job.data_type}) batch {batch.number}: "
                              f"{batch.item_count} items, {batch.attempts} attempts, last error: {batch.last_error}")
            for attempt in batch.failed_attempts.all():
                self.stdout.write(f"  attempt {attempt.number} [{attempt.outcome}] on {attempt.worker_name or '?'}: "
                                  f"{attempt.error}")
                if opts["tracebacks"] and attempt.traceback:
                    self.stdout.write("    " + attempt.traceback.rstrip().replace("\n", "\n    "))
        if opts["requeue"]:
            by_job: dict = {}
            for batch in batches:
                by_job.setdefault(batch.job_id, []).append(batch.id)
            for job_id, ids in by_job.items():
                try:
                    report = requeue_dead_batches(job_id, ids)
                except ZenithError as exc:
                    self.stderr.write(f"job {job_id}: {sentence(exc)}")
                    continue
                self.stdout.write(f"re-queued {report.dead_batches} batch(es) of job {job_id} ({report.items} items)")
