"""Job counters: moved only here, only by deltas, only inside the transaction that changes the
batch rows explaining them. That keeps "every job counter equals the sum over its batches"
true at every commit, whichever worker, retry or reconciler did the work.
"""

from __future__ import annotations

import dataclasses
import uuid

from jobs import sql
from jobs.models import ProcessingJob

COUNTERS = ("items_processed", "items_failed", "items_skipped",
            "batches_completed", "batches_failed", "batches_cancelled")
WAITING_PREFIX = "Waiting: "


@dataclasses.dataclass(frozen=True)
class JobCounters:
    batches_completed: int
    batches_failed: int
    batches_cancelled: int
    total_batches: int
    completed_at_set: bool

    @property
    def all_batches_terminal(self) -> bool:
        return self.batches_completed + self.batches_failed + self.batches_cancelled >= self.total_batches


def apply_job_delta(job_id: uuid.UUID, *, clear_waiting: bool = False, **deltas: int) -> JobCounters:
    """Adds `deltas` to the job's counters in one UPDATE and returns the new batch counts.
    Call it last in a transaction: it takes the job row's lock, which every batch of the job
    contends for."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown counters {sorted(unknown)}")
    row = sql.add_to_job_counters(job_id, deltas, clear_waiting_prefix=WAITING_PREFIX if clear_waiting else None)
    if row is None:
        raise ProcessingJob.DoesNotExist(job_id)
    return JobCounters(*row)
