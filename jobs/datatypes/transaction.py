"""`transaction` records: validated, normalised and stored once per (project, id).

A record has `id, date, amount, currency, account, counterparty, description` and optional
`reference` and `value_date` (read like `date`; an unreadable one fails the record as
`invalid_value_date`, an absent one is stored as none). Options: `default_currency`,
`day_first` (for 03/04/2024-style dates), `date_format` (strptime pattern),
`decimal_separator` ("." or ","), `replace` (true: a record whose id is already stored
replaces the stored row). `base_currency` is set by the submission from the project: a
record that names no currency, with no `default_currency` either, takes it, and is stored
with `currency_inferred`.

An id already stored is never dropped silently (docs/design.md, "Two kinds of failure"): the
batch's statistics count it and keep a sample with its reason. A row stored from the same
file (the same input checksum) is a re-reading of it and is replaced by the new reading, so
re-uploading a file with a corrected mapping corrects it; a row from another file is kept
unless the job asks to `replace`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from jobs.datatypes.base import BatchContext, Handler, RecordRejected, sum_stats
from jobs.datatypes.fields import (
    ISO_4217_ACTIVE,
    optional_text,
    parse_amount,
    parse_currency,
    parse_date,
    require_text,
)
from jobs.models import Transaction
from jobs.sql import insert_new

FIELDS = ["project", "external_id", "date", "amount", "currency", "account", "counterparty",
          "description", "reference", "job", "item_index", "created_at", "currency_inferred", "value_date"]
VALUES = ("date", "amount", "currency", "account", "counterparty", "description", "reference", "value_date")
DUPLICATES_KEPT = 50  # per batch: the sample of duplicates shown with their reasons
# The common case `quick_validator` takes without the general readers (ASCII digits only:
# `\d` would admit other scripts' digits, which the general readers handle).
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,4})?")
_TEXT_LIMITS = (("account", 128), ("counterparty", 255), ("description", 2000), ("reference", 128))


class TransactionRow(tuple):
    """The eight normalised values (id, date, amount, currency, account, counterparty,
    description, reference), with `currency_inferred` and `value_date` beside them."""

    currency_inferred = False
    value_date = None


def reject_unreadable(record: dict) -> None:
    """A record the importer could not read whole (a row of another width than the header,
    an id missing where the dataset carries ids) fails with the importer's reason."""
    problem = record.get("_import_error")
    if isinstance(problem, dict):
        raise RecordRejected(str(problem.get("code") or "unreadable_row"), str(problem.get("message") or ""),
                             str(problem.get("field") or ""))


class TransactionHandler(Handler):
    key_field = "id"
    results_kind = "transactions"
    bulk_loaded = (Transaction,)

    def validate(self, record: dict, ctx: BatchContext) -> tuple:
        options = ctx.options
        reject_unreadable(record)
        external_id = require_text(record, "id", 128)
        date = parse_date(record.get("date"), day_first=options.get("day_first"),
                          date_format=options.get("date_format"))
        amount = parse_amount(record.get("amount"), decimal_separator=options.get("decimal_separator"))
        given = record.get("currency")
        default = options.get("default_currency") or options.get("base_currency")
        currency = parse_currency(given, default=default)
        row = TransactionRow((
            external_id,
            date,
            amount,
            currency,
            optional_text(record, "account", 128),
            optional_text(record, "counterparty", 255),
            optional_text(record, "description", 2000),
            optional_text(record, "reference", 128),
        ))
        row.currency_inferred = bool(record.get("currency_inferred")) or given is None or (
            isinstance(given, str) and not given.strip())
        valued = record.get("value_date")
        if valued is not None and not (isinstance(valued, str) and not valued.strip()):
            row.value_date = parse_date(valued, day_first=options.get("day_first"),
                                        date_format=options.get("date_format"), field="value_date")
        return row

    def quick_validator(self, ctx: BatchContext) -> Callable[[dict], TransactionRow | None] | None:
        """The row `validate` returns, for records already in the shape most files have (an
        ISO date, a plain decimal amount, an ISO 4217 code, text without padding), in a
        fraction of its time; None for any other record, which `validate` then reads with
        its general readers and its reasons (docs/design.md, "The batch path"). A test holds
        the two to the same rows on generated and hostile records."""
        options = ctx.options
        if options.get("date_format") or options.get("decimal_separator") == ",":
            return None
        if type(self).validate is not TransactionHandler.validate:
            return None  # a subclass reads records its own way: it does not inherit this shortcut
        iso_day, plain_amount, active = _ISO_DAY.fullmatch, _PLAIN_AMOUNT.fullmatch, ISO_4217_ACTIVE
        fromisoformat = dt.date.fromisoformat

        def quick(record: dict) -> TransactionRow | None:
            if "_import_error" in record:
                return None
            ident, day, amount, currency = (record.get("id"), record.get("date"), record.get("amount"),
                                            record.get("currency"))
            if (ident.__class__ is not str or not ident or len(ident) > 128 or ident.strip() != ident
                    or day.__class__ is not str or not iso_day(day) or currency.__class__ is not str
                    or currency not in active):
                return None
            if amount.__class__ is str:
                if not plain_amount(amount):
                    return None
            elif amount.__class__ is not int or not -10**15 < amount < 10**15:
                return None
            texts = []
            for field, limit in _TEXT_LIMITS:
                value = record.get(field)
                if value is None:
                    texts.append("")
                elif value.__class__ is not str or value[:1].isspace():
                    return None
                else:
                    texts.append(" ".join(value.split())[:limit])
            valued = record.get("value_date")
            if valued is not None and valued != "" and (valued.__class__ is not str or not iso_day(valued)):
                return None
            try:
                row = TransactionRow((ident, fromisoformat(day), Decimal(amount), currency, *texts))
                if valued:
                    row.value_date = fromisoformat(valued)
            except ValueError:  # 2025-02-30: the general reader words the rejection
                return None
            if record.get("currency_inferred"):
                row.currency_inferred = True
            return row

        return quick

    def persist(self, rows: list[tuple[int, Any]], ctx: BatchContext) -> dict:
        from django.utils import timezone

        now = timezone.now()
        table_rows = [
            (ctx.project_id, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], ctx.job_id, index, now,
             getattr(r, "currency_inferred", False), getattr(r, "value_date", None))
            for index, r in rows
        ]
        inserted = insert_new(Transaction, FIELDS, table_rows, ["project", "external_id"], "item_index")
        stats = {"stored": len(inserted), "duplicates_within_job": 0, "duplicates_across_jobs": 0}
        if len(inserted) < len(rows):
            stats.update(_settle_duplicates([(index, r) for index, r in rows if index not in inserted], ctx, now))
        return stats

    def summarize(self, job: Any, batch_stats: Iterable[dict]) -> dict:
        batch_stats = list(batch_stats)
        summary = sum_stats(batch_stats)
        sample: list[str] = []
        duplicates: list[dict] = []
        for stats in batch_stats:
            sample.extend((stats or {}).get("duplicate_ids_sample", []))
            duplicates.extend((stats or {}).get("duplicates", []))
        if sample:
            summary["duplicate_ids_sample"] = sample[:20]
        if duplicates:
            summary["duplicates"] = sorted(duplicates, key=lambda d: d.get("index", 0))[:100]
        warning = job_warning(job, summary)
        if warning:
            summary["warning"] = warning
        return summary


def _settle_duplicates(duplicates: list[tuple[int, Any]], ctx: BatchContext, now) -> dict:
    """What becomes of rows whose id is already stored in the project: a repeat within this
    job is counted; a row stored earlier with the same values is already there; one stored
    from the same file (or any, with `options.replace`) is replaced; any other is kept and
    counted as a duplicate across uploads. Each gets its reason in the sample."""
    from jobs.models import ProcessingJob

    existing = {row.external_id: row for row in Transaction.objects.filter(
        project_id=ctx.project_id, external_id__in=[r[0] for _, r in duplicates])}
    replace_any = ctx.options.get("replace") is True
    jobs = {str(j["id"]): j for j in ProcessingJob.objects.filter(
        id__in={row.job_id for row in existing.values() if row.job_id} | {ctx.job_id}).values(
        "id", "input_checksum", "input_name")}
    mine = jobs.get(str(ctx.job_id), {})
    stats = {"duplicates_within_job": 0, "duplicates_across_jobs": 0, "already_stored": 0, "replaced": 0}
    kept: list[dict] = []
    replaced: list[Transaction] = []
    for index, r in duplicates:
        old = existing.get(r[0])
        owner = jobs.get(str(old.job_id)) if old is not None and old.job_id else None
        new_values = (r[1], r[2], r[3], r[4], r[5], r[6], r[7], getattr(r, "value_date", None))
        if old is not None and str(old.job_id) == str(ctx.job_id):
            kind = "duplicates_within_job"
            reason = (f"id {r[0]} appears more than once in this upload (first at item {old.item_index}); "
                      "only the first is stored")
        elif old is not None and tuple(getattr(old, f) for f in VALUES) == new_values:
            kind = "already_stored"
            reason = f"id {r[0]} is already stored with the same values" + _by(owner)
        elif old is not None and (replace_any or (owner and mine.get("input_checksum")
                                                  and owner["input_checksum"] == mine["input_checksum"])):
            kind = "replaced"
            reason = f"id {r[0]} was stored" + _by(owner) + " and is replaced by this reading"
            (old.date, old.amount, old.currency, old.account, old.counterparty, old.description,
             old.reference, old.value_date) = new_values
            old.currency_inferred = getattr(r, "currency_inferred", False)
            old.job_id, old.item_index, old.created_at = ctx.job_id, index, now
            replaced.append(old)
        else:
            kind = "duplicates_across_jobs"
            reason = (f"id {r[0]} is already stored with other values" + _by(owner) + "; not stored: to replace "
                      "the stored row, submit again with options {\"replace\": true}")
        stats[kind] += 1
        if len(kept) < DUPLICATES_KEPT:
            kept.append({"index": index, "id": r[0], "kind": kind, "reason": reason})
    if replaced:
        Transaction.objects.bulk_update(replaced, ["date", "amount", "currency", "account", "counterparty",
                                                   "description", "reference", "currency_inferred",
                                                   "value_date", "job",
                                                   "item_index", "created_at"], batch_size=500)
    stats = {key: value for key, value in stats.items() if value or key.startswith("duplicates_")}
    stats["duplicates"] = kept
    stats["duplicate_ids_sample"] = [d["id"] for d in kept if d["kind"].startswith("duplicates_")][:20]
    return stats


def _by(owner: dict | None) -> str:
    if not owner:
        return ""
    name = f" ({owner['input_name']})" if owner.get("input_name") else ""
    return f" by job {owner['id']}{name}"


def job_warning(job: Any, summary: dict) -> str:
    """A sentence for a job that ended with nothing to show for it: every record failed for
    one reason, or nothing was stored because every id was already there. The job page and
    the API show it with the job (issue 19: no silent "completed")."""
    from django.db.models import Count

    total = getattr(job, "total_items", 0) or 0
    failed = getattr(job, "items_failed", 0) or 0
    if total and failed >= total:
        top = list(job.failures.values("error_code", "message").annotate(n=Count("id")).order_by("-n")[:1])
        if top and top[0]["n"] == failed:
            return (f"every record failed for the same reason, {top[0]['error_code']}: {top[0]['message']}. "
                    "Nothing was stored; correct the reading (see the import diagnosis) and submit again.")
        return "every record failed; nothing was stored. See the failures for their reasons."
    stored = summary.get("stored", 0) + summary.get("replaced", 0)
    not_stored = summary.get("duplicates_within_job", 0) + summary.get("duplicates_across_jobs", 0)
    if total and not stored and not_stored:
        return (f"nothing new was stored: {not_stored} record(s) have ids already stored with other values "
                "(see duplicates); submit with options {\"replace\": true} to replace them.")
    return ""
