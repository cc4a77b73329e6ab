"""The finalizer: runs once per job after every batch has ended, whatever way it ended.

The original design used a Celery chord (docs/design.md, "Finalizer trigger"); with RQ the
equivalent (`depends_on` every batch with `allow_failure`) re-reads every sibling's status as
each batch finishes (quadratic in batches) and never fires when a dependency is stopped or
cancelled. Zenith's dependency lives in PostgreSQL instead: the transaction that ends a batch
also bumps the job's batch counters, and the one that brings them to `total_batches`
enqueues the finalizer. A cancelled job is finalized by whichever path ends its last running
batch (or by the cancel itself when none runs). The reconciler catches any trigger that was
lost. Running twice is harmless: the job row is locked and `completed_at` makes the second
run a no-op.

It sets the final status (completed; failed when any batch was dead-lettered; cancelled),
re-derives the counters from the batch rows as a cross-check, and asks the data type's
handler for the job-wide summary.
"""

from __future__ import annotations

import logging
import uuid

from django.db import DatabaseError, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from jobs import sql
from jobs.datatypes.registry import get_data_type
from jobs.models import TERMINAL_BATCH_STATUSES, Batch, BatchStatus, JobStatus, ProcessingJob
from jobs.selectors import analyst
from jobs.services.accounting import WAITING_PREFIX
from zenith.infra import metrics
from zenith.infra.events import log_event

logger = logging.getLogger(__name__)

# Jobs that stored at least this many rows refresh the planner statistics of the tables they
# filled (jobs.sql.analyze); smaller ones leave it to autovacuum.
ANALYZE_AFTER_ROWS = 10_000


def finalize_if_ready(job_id: uuid.UUID) -> bool:
    """Finalizes now when every batch has ended; cheap to call when unsure."""
    job = ProcessingJob.objects.filter(id=job_id, completed_at__isnull=True).only(
        "total_batches", "batches_completed", "batches_failed", "batches_cancelled").first()
    if job is None:
        return False
    if job.batches_completed + job.batches_failed + job.batches_cancelled < job.total_batches:
        return False
    return finalize_job(job_id)


def finalize_job(job_id: uuid.UUID | str) -> bool:
    """Returns True when this call finalized the job."""
    with transaction.atomic():
        job = ProcessingJob.objects.select_for_update().filter(id=job_id).first()
        if job is None or job.completed_at is not None:
            return False
        rows = list(Batch.objects.filter(job_id=job.id).values("status").annotate(
            n=Count("id"), processed=Sum("processed_count"), failed=Sum("failed_count"),
            skipped=Sum("skipped_count")))
        by_status = {row["status"]: row for row in rows}
        if any(status not in TERMINAL_BATCH_STATUSES for status in by_status):
            return False
        processed = sum(row["processed"] or 0 for row in rows)
        failed = sum(row["failed"] or 0 for row in rows)
        skipped = sum(row["skipped"] or 0 for row in rows)
        completed = by_status.get(BatchStatus.SUCCEEDED, {}).get("n", 0)
        dead = by_status.get(BatchStatus.DEAD, {}).get("n", 0)
        cancelled = by_status.get(BatchStatus.CANCELLED, {}).get("n", 0)
        derived = (processed, failed, skipped, completed, dead, cancelled)
        recorded = (job.items_processed, job.items_failed, job.items_skipped, job.batches_completed,
                    job.batches_failed, job.batches_cancelled)
        if derived != recorded:
            # Never expected; PostgreSQL's batch rows are the truth, so they win, loudly.
            logger.error("job counters disagreed with its batches; corrected",
                         extra={"event": "job.counters_corrected", "job_id": str(job.id),
                                "recorded": recorded, "derived": derived})
        if processed + failed + skipped != job.total_items:
            logger.error("accounting identity broken", extra={"event": "job.identity_broken", "job_id": str(job.id),
                                                               "total": job.total_items, "derived": derived})
        (job.items_processed, job.items_failed, job.items_skipped, job.batches_completed,
         job.batches_failed, job.batches_cancelled) = derived

        handler = get_data_type(job.data_type).handler
        if processed >= ANALYZE_AFTER_ROWS:
            # Before the summary: its job-wide queries (a reconciliation's unmatched ledger rows,
            # an analysis's counts) are planned on these statistics, and a table without any
            # makes the planner pick nested loops that read every row once per row.
            _refresh_statistics(job, handler)
        stats = Batch.objects.filter(job_id=job.id, status=BatchStatus.SUCCEEDED).values_list("stats", flat=True)
        job.summary = handler.summarize(job, stats.iterator(chunk_size=500)) or {}

        if job.cancel_requested_at:
            job.status = JobStatus.CANCELLED
        elif dead:
            job.status = JobStatus.FAILED
            last = (Batch.objects.filter(job_id=job.id, status=BatchStatus.DEAD).order_by("-finished_at")
                    .values_list("number", "last_error").first())
            job.error_message = (f"{dead} of {job.total_batches} batches were dead-lettered after their retries; "
                                 f"batch {last[0]}: {last[1]}")[:4000]
        else:
            job.status = JobStatus.COMPLETED
            if job.error_message.startswith(WAITING_PREFIX):
                job.error_message = ""
        if job.status != JobStatus.FAILED and job.error_message.startswith(WAITING_PREFIX):
            job.error_message = ""
        job.completed_at = timezone.now()
        if job.started_at is None:
            job.started_at = job.completed_at
        job.save()
    metrics.job_finished(job.data_type, job.status)
    try:
        analyst.warm_charts(job=job)
    except Exception:  # pages compute them on demand; a finalized job stays finalized
        logger.warning("could not prepare the charts of job %s", job.id, exc_info=True)
    log_event("job.finalized", job, status=job.status, processed=job.items_processed, failed=job.items_failed,
              skipped=job.items_skipped, batches=job.total_batches,
              duration_s=round((job.completed_at - (job.started_at or job.created_at)).total_seconds(), 3))
    return True


def _refresh_statistics(job: ProcessingJob, handler) -> None:
    """ANALYZE the tables the job filled, in a savepoint so a failure (a lock timeout, say)
    leaves the finalization itself intact."""
    try:
        with transaction.atomic():
            sql.analyze(handler.bulk_loaded)
    except DatabaseError:
        logger.warning("could not refresh planner statistics after job %s", job.id, exc_info=True)
