"""`entity` records: counterparty / entity names normalised and given a stable key."""

from __future__ import annotations

from .base import BatchContext, Handler, RecordRejected
from .fields import optional_text, require_text
from .text import entity_key, normalize_name


class EntityHandler(Handler):
    key_field = "id"

    def item_key(self, record) -> str:
        if isinstance(record, dict):
            return str(record.get("id") or record.get("name") or "")[:255]
        return ""

    def validate(self, record: dict, ctx: BatchContext) -> dict:
        name = require_text(record, "name", 255)
        normalized = normalize_name(name)
        if not normalized:
            raise RecordRejected("invalid_name", f"name {name!r} has no letters or digits once normalised", "name")
        return {
            "id": optional_text(record, "id", 128),
            "name": name,
            "normalized_name": normalized,
            "entity_key": entity_key(normalized),
            "entity_type": optional_text(record, "type", 32).lower(),
            "country": optional_text(record, "country", 2).upper(),
        }

    def persist(self, rows, ctx: BatchContext) -> dict:
        keys = {row["entity_key"] for _, row in rows}
        return {"entities": len(rows), "distinct_keys_in_batch": len(keys)}
