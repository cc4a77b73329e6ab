"""The contract between the batch engine and a data type's handler.

The engine (jobs.services.execution) owns claiming, heartbeats, retries and accounting. A
handler only says what one record means:

- `validate(record, ctx)` turns a raw record into a normalised row, or raises
  `RecordRejected` (the data's fault: recorded as an item failure, never retried). Any other
  exception is the system's fault: the item is retried with backoff and counts towards the
  circuit breaker.
- `quick_validator(ctx)` may return a function that gives `validate`'s row for a record in
  the common shape, and None for any other, which `validate` then reads. It never rejects:
  every reason a user sees comes from `validate`.
- `persist(rows, ctx)` writes the valid rows of one batch inside the batch's transaction and
  returns statistics that are stored on the batch (`Batch.stats`).
- `summarize(job, stats)` runs once in the finalizer over all batches' statistics and returns
  the job's summary (job-wide results such as Benford's test are computed here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any


class RecordRejected(Exception):
    """A record that fails validation. `code` is stable and machine-readable."""

    def __init__(self, code: str, message: str, field: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclasses.dataclass
class BatchContext:
    job_id: Any
    project_id: str
    batch_id: int
    batch_number: int
    data_type: str
    options: dict
    attempt: int
    checkpoint: Callable[[], None] = lambda: None


class Handler:
    """Base class for data-type handlers; subclasses override what they need."""

    #: the record field used as the item key in failure reports
    key_field = "id"
    #: models whose tables a job of this type fills in bulk: the finalizer refreshes their
    #: planner statistics (docs/design.md, "The SQL module")
    bulk_loaded: tuple[type, ...] = ()

    def item_key(self, record: Any) -> str:
        if isinstance(record, dict):
            value = record.get(self.key_field)
            if value is not None:
                return str(value)[:255]
        return ""

    def validate(self, record: dict, ctx: BatchContext) -> Any:
        return record

    def quick_validator(self, ctx: BatchContext) -> Callable[[dict], Any | None] | None:
        return None

    def persist(self, rows: list[tuple[int, Any]], ctx: BatchContext) -> dict:
        return {}

    def summarize(self, job: Any, batch_stats: Iterable[dict]) -> dict:
        return sum_stats(batch_stats)


def sum_stats(batch_stats: Iterable[dict]) -> dict:
    """Adds numeric statistics across batches; nested dicts are summed key by key."""
    total: dict = {}
    for stats in batch_stats:
        _add_into(total, stats or {}, keep_other=False)
    return total


def merge_stats(old: dict, new: dict) -> dict:
    """One batch's statistics after a re-run: numbers added, nested dicts merged key by key,
    anything else (e.g. a sample of ids) taken from the newer run."""
    merged = dict(old)
    _add_into(merged, new, keep_other=True)
    return merged


def _add_into(total: dict, stats: dict, *, keep_other: bool) -> None:
    for key, value in stats.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and isinstance(total.get(key, 0), (int, float)):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict) and isinstance(total.get(key, {}), dict):
            total[key] = dict(total.get(key, {}))
            _add_into(total[key], value, keep_other=keep_other)
        elif keep_other:
            total[key] = value
