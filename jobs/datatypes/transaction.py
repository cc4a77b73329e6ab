"""`transaction` records: validated, normalised and stored once per (project, id).

A record has `id, date, amount, currency, account, counterparty, description` and optional
`reference`. Options: `default_currency`, `day_first` (for 03/04/2024-style dates),
`date_format` (strptime pattern), `decimal_separator` ("." or ",").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jobs.datatypes.base import BatchContext, Handler, sum_stats
from jobs.datatypes.fields import optional_text, parse_amount, parse_currency, parse_date, require_text
from jobs.models import Transaction
from jobs.sql import insert_new

FIELDS = ["project", "external_id", "date", "amount", "currency", "account", "counterparty",
          "description", "reference", "job", "item_index", "created_at"]


class TransactionHandler(Handler):
    key_field = "id"
    results_kind = "transactions"
    bulk_loaded = (Transaction,)

    def validate(self, record: dict, ctx: BatchContext) -> tuple:
        options = ctx.options
        external_id = require_text(record, "id", 128)
        date = parse_date(record.get("date"), day_first=options.get("day_first"),
                          date_format=options.get("date_format"))
        amount = parse_amount(record.get("amount"), decimal_separator=options.get("decimal_separator"))
        currency = parse_currency(record.get("currency"), default=options.get("default_currency"))
        return (
            external_id,
            date,
            amount,
            currency,
            optional_text(record, "account", 128),
            optional_text(record, "counterparty", 255),
            optional_text(record, "description", 2000),
            optional_text(record, "reference", 128),
        )

    def persist(self, rows: list[tuple[int, Any]], ctx: BatchContext) -> dict:
        from django.utils import timezone

        now = timezone.now()
        table_rows = [
            (ctx.project_id, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], ctx.job_id, index, now)
            for index, r in rows
        ]
        inserted = insert_new(Transaction, FIELDS, table_rows, ["project", "external_id"], "item_index")
        stats = {"stored": len(inserted), "duplicates_within_job": 0, "duplicates_across_jobs": 0}
        if len(inserted) < len(rows):
            duplicates = [(index, r[0]) for index, r in rows if index not in inserted]
            owners = dict(
                Transaction.objects.filter(project_id=ctx.project_id, external_id__in=[k for _, k in duplicates])
                .values_list("external_id", "job_id")
            )
            for _, key in duplicates:
                if str(owners.get(key)) == str(ctx.job_id):
                    stats["duplicates_within_job"] += 1
                else:
                    stats["duplicates_across_jobs"] += 1
            stats["duplicate_ids_sample"] = [key for _, key in duplicates[:20]]
        return stats

    def summarize(self, job: Any, batch_stats: Iterable[dict]) -> dict:
        batch_stats = list(batch_stats)
        summary = sum_stats(batch_stats)
        sample: list[str] = []
        for stats in batch_stats:
            sample.extend((stats or {}).get("duplicate_ids_sample", []))
        if sample:
            summary["duplicate_ids_sample"] = sample[:20]
        return summary

