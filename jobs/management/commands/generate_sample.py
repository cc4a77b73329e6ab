"""`manage.py generate_sample --type T --items N --seed S [--out PATH]`: a realistic synthetic
dataset with planted anomalies, and a truth file saying what a correct run finds.

Types: transaction (a ledger with planted red flags, invalid records, messy formats and
repeated ids; and the bank statement of what its ingestion stores, written next to it as
`<name>-statement.<ext>`, for reconciliation), analysis (a ledger with planted red flags),
reconciliation (a ledger, written next to the output as `<name>-ledger.<ext>`, and its bank
statement), entity (names with variants), embedding (descriptions with near-duplicates).
The truth goes to `<name>.truth.json`; its `submit_as` says what to submit each file as, in
order. The same type and seed always give the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.management import sample_data as sample


def _sibling(path: Path, tag: str) -> Path:
    """`statement.csv.gz` + "ledger" -> `statement-ledger.csv.gz`."""
    name = path.name
    stem, dot, rest = name.partition(".")
    return path.with_name(f"{stem}-{tag}{dot}{rest}")


def _truth_path(path: Path) -> Path:
    return path.with_name(f"{path.name.partition('.')[0]}.truth.json")


class Command(BaseCommand):
    help = "Write a synthetic dataset with planted anomalies and its truth file."

    def add_arguments(self, parser):
        parser.add_argument("--type", dest="data_type", required=True, choices=sample.SAMPLE_TYPES)
        parser.add_argument("--items", type=int, default=5000, help="Records (ledger payments for reconciliation).")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--out", help="Output file (.csv, .json, .jsonl, optionally .gz); default "
                                          "var/samples/<type>-<items>-<seed>.csv")

    def handle(self, *args, **opts):
        if not 10 <= opts["items"] <= 1_000_000:
            raise CommandError("--items must be from 10 to 1000000")
        data_type = opts["data_type"]
        default = Path(settings.VAR_DIR) / "samples" / f"{data_type}-{opts['items']}-{opts['seed']}.csv"
        out = Path(opts["out"] or default)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            result = sample.sample(data_type, opts["items"], opts["seed"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        written = {}
        for role, records in result.files.items():
            path = out if role == result.main else _sibling(out, role)
            count = sample.write(path, records, fields=sample.FIELDS_BY_ROLE[role])
            written[role] = str(path)
            self.stdout.write(f"wrote {path} ({count:,} {role} records)")
        truth_path = _truth_path(out)
        truth = {**result.truth, "files": written, "submit_as": dict(result.submit_as)}
        truth_path.write_text(json.dumps(truth, indent=1, default=str))
        self.stdout.write(f"wrote {truth_path} (what a correct run finds)")
        for step, (role, as_type) in enumerate(result.submit_as.items()):
            self.stdout.write(f"{'then' if step else 'submit'}: manage.py submit_job {written[role]} --type {as_type} "
                              "--project P --follow")
        if data_type == "transaction":
            self.stdout.write("and screen the stored ledger: manage.py submit_job --type analysis --project P "
                              "--source project --follow")
