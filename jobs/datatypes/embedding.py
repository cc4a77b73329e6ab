"""`embedding` records: text vectorised offline with hashed character n-grams."""

from __future__ import annotations

from .base import BatchContext, Handler, RecordRejected
from .fields import require_text
from .text import hashed_ngram_vector

DIMENSIONS = 256


class EmbeddingHandler(Handler):
    key_field = "id"

    def validate(self, record: dict, ctx: BatchContext) -> dict:
        external_id = require_text(record, "id", 128)
        text = record.get("text") or record.get("description")
        if not isinstance(text, str) or not text.strip():
            raise RecordRejected("missing_text", "text (or description) is required", "text")
        if len(text) > 10_000:
            raise RecordRejected("invalid_text", "text is longer than 10000 characters", "text")
        return {"id": external_id, "vector": hashed_ngram_vector(text, DIMENSIONS)}

    def persist(self, rows, ctx: BatchContext) -> dict:
        return {"vectors": len(rows), "dimensions": DIMENSIONS if rows else 0}
