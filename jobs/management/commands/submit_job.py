"""`manage.py submit_job PATH --type T --project P [--priority N] [--map F=C ... | --mapping FILE|NAME] [--preview]
[--follow]`, or without PATH `--source project` for an analysis or embedding job over the project's stored
transactions."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from jobs.errors import ZenithError, sentence
from jobs.management.commands._common import get_job
from jobs.models import Project
from jobs.selectors.core import job_progress
from jobs.services import submit_file, submit_project_transactions
from jobs.services.mappings import preview_upload, save_mapping


class Command(BaseCommand):
    help = ("Submit a file as a Zenith job: CSV/TSV (any common encoding, preamble lines allowed), JSON, JSON lines, "
            "Excel .xlsx or OFX/QFX, optionally gzip; bank exports are mapped by their headers or by --map.")

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="File to submit ('-' for standard input); none with "
                                                    "--source project.")
        parser.add_argument("--type", dest="data_type", required=True, help="Data type, e.g. transaction.")
        parser.add_argument("--project", required=True, help="Project id (created if missing).")
        parser.add_argument("--priority", type=int, default=None,
                            help="1 (lowest) to 10 (highest); ZENITH_DEFAULT_PRIORITY when not given.")
        parser.add_argument("--format", choices=["csv", "json", "jsonl"], help="Override format detection.")
        parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                            help="Data-type option, e.g. --option default_currency=EUR (repeatable).")
        parser.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                            help='Column mapping, e.g. --map date=Buchungstag --map amount=Betrag (repeatable). '
                                 'Rules too: --map decimal_separator=, --map day_first=true --map sign=inverted.')
        parser.add_argument("--mapping", help="A mapping JSON file, or the name of a mapping saved in the project.")
        parser.add_argument("--save-mapping", metavar="NAME", help="Save the mapping given under this name.")
        parser.add_argument("--preview", action="store_true",
                            help="Show how the file would be read (detected mapping, first rows) and stop.")
        parser.add_argument("--follow", action="store_true", help="Show a live progress bar until the job ends.")
        parser.add_argument("--source", choices=["project"],
                            help="project: read the project's stored transactions instead of a file "
                                 "(analysis, embedding).")

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
        if opts["source"] == "project":
            if opts["path"]:
                raise CommandError("--source project reads the project's stored transactions: give no PATH")
            try:
                job = submit_project_transactions(project=project, data_type=opts["data_type"],
                                                  priority=opts["priority"], options=options)
            except ZenithError as exc:
                raise CommandError(sentence(exc)) from None
            self.stdout.write(f"job {job.id}: {job.total_items:,} stored transactions in {job.total_batches:,} "
                              f"batches of {job.batch_config['size']} ({job.data_type}, priority {job.priority})")
            if opts["follow"]:
                follow(self, str(job.id))
            return
        if not opts["path"]:
            raise CommandError("give the PATH of a file to submit (or --source project to read the project's "
                               "stored transactions)")
        options.update(self._mapping_options(opts))
        path = opts["path"]
        try:
            raw = _spooled_stdin() if path == "-" else Path(path).open("rb")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        with raw:
            try:
                if opts["save_mapping"]:
                    if not options.get("mapping"):
                        raise CommandError("--save-mapping needs a mapping (--map or --mapping FILE)")
                    save_mapping(project, opts["save_mapping"], options["mapping"])
                    self.stderr.write(f"saved mapping {opts['save_mapping']} in project {project.id}")
                if opts["preview"]:
                    result = preview_upload(project, raw, Path(path).name, opts["data_type"], fmt=opts["format"],
                                            options=options)
                    self.stdout.write(json.dumps(result, indent=2, default=str))
                    return
                job = submit_file(project=project, data_type=opts["data_type"], raw=raw, name=Path(path).name,
                                  fmt=opts["format"], priority=opts["priority"], options=options)
            except ZenithError as exc:
                raise CommandError(sentence(exc)) from None
        self.stdout.write(f"job {job.id}: {job.total_items:,} items in {job.total_batches:,} batches of "
                          f"{job.batch_config['size']} ({job.data_type}, priority {job.priority})")
        if job.import_details.get("mode") == "mapped":
            self.stdout.write("read as: " + json.dumps({k: v for k, v in job.import_details.items()
                                                        if k in ("encoding", "delimiter", "header_row", "mapping")}))
        if opts["follow"]:
            follow(self, str(job.id))

    def _mapping_options(self, opts) -> dict:
        if opts["mapping"] and opts["map"]:
            raise CommandError("give --mapping or --map, not both")
        if opts["mapping"]:
            source = Path(opts["mapping"])
            if source.is_file():
                try:
                    return {"mapping": json.loads(source.read_text())}
                except json.JSONDecodeError as exc:
                    raise CommandError(f"{source} is not valid JSON: {exc}") from None
            return {"mapping_name": opts["mapping"]}
        if not opts["map"]:
            return {}
        mapping: dict = {}
        for pair in opts["map"]:
            key, sep, value = pair.partition("=")
            if not sep:
                raise CommandError(f"--map {pair!r}: use FIELD=COLUMN")
            value = value.strip()
            parsed = {"true": True, "false": False}.get(value.lower(), value)
            if key.strip() in ("header_row",) and value.isdigit():
                parsed = int(value)
            mapping[key.strip()] = parsed
        return {"mapping": mapping}


def _spooled_stdin():
    """Standard input copied to a temporary file: imports read some files twice."""
    spool = tempfile.TemporaryFile()
    shutil.copyfileobj(sys.stdin.buffer, spool)
    spool.seek(0)
    return spool


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
