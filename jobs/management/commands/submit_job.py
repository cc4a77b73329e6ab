"""`manage.py submit_job PATH --type T --project P [--priority N] [--follow]`"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from jobs.datatypes import UnknownDataType
from jobs.models import Project
from jobs.readers import InputError, open_records
from jobs.selectors import job_progress
from jobs.services import SubmissionError, submit_job

from ._common import get_job


class Command(BaseCommand):
    help = "Submit a CSV, JSON array or JSON lines file (optionally gzip) as a Zenith job."

    def add_arguments(self, parser):
        parser.add_argument("path", help="File to submit ('-' for standard input).")
        parser.add_argument("--type", dest="data_type", required=True, help="Data type, e.g. transaction.")
        parser.add_argument("--project", required=True, help="Project id (created if missing).")
        parser.add_argument("--priority", type=int, default=5, help="1 (lowest) to 10 (highest).")
        parser.add_argument("--format", choices=["csv", "json", "jsonl"], help="Override format detection.")
        parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                            help="Data-type option, e.g. --option default_currency=EUR (repeatable).")
        parser.add_argument("--follow", action="store_true", help="Show a live progress bar until the job ends.")

    def handle(self, *args, **opts):
        options = {}
        for pair in opts["option"]:
            key, sep, value = pair.partition("=")
            if not sep:
                raise CommandError(f"--option {pair!r}: use KEY=VALUE")
            options[key.strip()] = {"true": True, "false": False}.get(value.lower(), value)
        project, created = Project.objects.get_or_create(
            id=slugify(opts["project"]) or opts["project"], defaults={"name": opts["project"]})
        if created:
            self.stderr.write(f"created project {project.id}")
        path = opts["path"]
        try:
            raw = sys.stdin.buffer if path == "-" else Path(path).open("rb")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        with raw:
            try:
                fmt, records = open_records(raw, name=path, fmt=opts["format"])
                job = submit_job(project=project, data_type=opts["data_type"], records=records,
                                 priority=opts["priority"], options=options, input_name=Path(path).name,
                                 input_format=fmt)
            except (InputError, SubmissionError, UnknownDataType) as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"job {job.id}: {job.total_items:,} items in {job.total_batches:,} batches of "
                          f"{job.batch_config['size']} ({job.data_type}, priority {job.priority})")
        if opts["follow"]:
            follow(self, str(job.id))


def follow(command: BaseCommand, job_id: str) -> None:
    from tqdm import tqdm

    job = get_job(job_id)
    bar = tqdm(total=job.total_items, unit="item", unit_scale=True, dynamic_ncols=True, file=command.stdout._out)
    try:
        while True:
            job.refresh_from_db()
            bar.n = job.items_done
            bar.set_postfix_str(f"{job.status} failed={job.items_failed:,}", refresh=False)
            bar.refresh()
            if job.completed_at:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        command.stdout.write("\nstopped following; the job goes on")
        return
    finally:
        bar.close()
    progress = job_progress(job)
    command.stdout.write(f"job {job.id} {job.status}: {job.items_processed:,} processed, {job.items_failed:,} "
                         f"failed, {job.items_skipped:,} skipped in {progress.elapsed_seconds or 0:.1f} s "
                         f"({progress.throughput_per_second or 0:,.0f} items/s)")
    if job.error_message:
        command.stdout.write(job.error_message)
