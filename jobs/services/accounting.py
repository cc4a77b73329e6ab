"""Job counters: moved only here, only by deltas, only inside the transaction that changes the
batch rows explaining them. That keeps "every job counter equals the sum over its batches"
true at every commit, whichever worker, retry or reconciler did the work.
"""

from __future__ import annotations

import dataclasses
import uuid

from django.db import connection

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
    table = ProcessingJob._meta.db_table
    assignments, params = [], []
    for name, value in deltas.items():
        if value:
            assignments.append(f'"{name}" = "{name}" + %s')
            params.append(int(value))
    if clear_waiting:
        assignments.append(
            "\"error_message\" = CASE WHEN \"error_message\" LIKE %s THEN '' ELSE \"error_message\" END"
        )
        params.append(WAITING_PREFIX + "%")
    if not assignments:
        assignments.append('"total_batches" = "total_batches"')
    job_pk = ProcessingJob._meta.pk.get_db_prep_value(job_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table}" SET {", ".join(assignments)} WHERE "id" = %s '
            'RETURNING "batches_completed", "batches_failed", "batches_cancelled", "total_batches", '
            '"completed_at"',
            [*params, job_pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise ProcessingJob.DoesNotExist(job_id)
    return JobCounters(row[0], row[1], row[2], row[3], row[4] is not None)
