"""`reconciliation` records: bank-statement lines, validated like transactions, to be matched
against the project's ledger."""

from __future__ import annotations

from .base import BatchContext, Handler
from .fields import optional_text, parse_amount, parse_currency, parse_date, require_text


class ReconciliationHandler(Handler):
    key_field = "id"

    def validate(self, record: dict, ctx: BatchContext) -> dict:
        options = ctx.options
        return {
            "id": require_text(record, "id", 128),
            "date": parse_date(record.get("date"), day_first=options.get("day_first"),
                               date_format=options.get("date_format")),
            "amount": parse_amount(record.get("amount"), decimal_separator=options.get("decimal_separator")),
            "currency": parse_currency(record.get("currency"), default=options.get("default_currency")),
            "reference": optional_text(record, "reference", 128),
            "counterparty": optional_text(record, "counterparty", 255),
            "description": optional_text(record, "description", 2000),
        }

    def persist(self, rows, ctx: BatchContext) -> dict:
        return {"lines": len(rows)}
