"""Operator actions on jobs: cancel, retry failed work, re-queue dead letters.

Each is one service call used alike by the API, the monitor pages, admin actions and
manage.py commands. All state changes are compare-and-set on the batch rows and move the job
counters in the same transaction (see accounting).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import Now
from django.utils import timezone

from jobs.engine import dispatch
from jobs.errors import JobAlreadyFinished, JobStateError
from jobs.models import (
    TERMINAL_JOB_STATUSES,
    AuditAction,
    Batch,
    BatchStatus,
    FailureKind,
    ItemFailure,
    JobStatus,
    ProcessingJob,
    RerunScope,
)
from jobs.services import audit
from jobs.services.accounting import apply_job_delta
from zenith.infra import metrics
from zenith.infra.events import log_event

logger = logging.getLogger(__name__)

NOT_STARTED = (BatchStatus.PENDING, BatchStatus.QUEUED, BatchStatus.RETRYING)


def cancel_job(job_id: uuid.UUID, *, reason: str = "", actor: Any = None) -> ProcessingJob:
    """Cancels a job: batches not started never start, running ones stop at their next
    heartbeat (within ~ZENITH_HEARTBEAT_SECONDS) and roll back, and the finalizer records
    `cancelled` with the exact counts of what did happen. `actor` (the user, None for a
    command) goes to the audit log."""
    with transaction.atomic():
        job = ProcessingJob.objects.select_for_update().get(id=job_id)
        if job.status in TERMINAL_JOB_STATUSES:
            raise JobAlreadyFinished(job.status)
        job.status = JobStatus.CANCELLED
        job.cancel_requested_at = job.cancel_requested_at or _now()
        if reason:
            job.error_message = reason[:2000]
        job.save(update_fields=["status", "cancel_requested_at", "error_message"])
        _cancel_not_started(job)
        audit.record(actor=actor, action=AuditAction.JOB_CANCELLED, project=job.project_id, target=f"job:{job.id}",
                     details={"data_type": job.data_type, **({"reason": reason[:2000]} if reason else {})})
    log_event("job.cancelled", job)
    from jobs.services.finalizer import finalize_if_ready

    finalize_if_ready(job.id)
    job.refresh_from_db()
    return job


def cancel_unstarted_batches(job_id: uuid.UUID) -> None:
    """Used by workers and the reconciler when they meet a batch of a cancelled job."""
    with transaction.atomic():
        job = ProcessingJob.objects.select_for_update().get(id=job_id)
        _cancel_not_started(job)
    from jobs.services.finalizer import finalize_if_ready

    finalize_if_ready(job_id)


def _cancel_not_started(job: ProcessingJob) -> None:
    batches = list(
        Batch.objects.select_for_update().filter(job_id=job.id, status__in=NOT_STARTED)
        .values_list("id", "rerun_scope", "item_count", "rq_job_id")
    )
    if not batches:
        return
    fresh = [(bid, count, rq) for bid, scope, count, rq in batches if not scope]
    reruns = [bid for bid, scope, _, _ in batches if scope]
    skipped = sum(count for _, count, _ in fresh)
    if fresh:
        Batch.objects.filter(id__in=[bid for bid, _, _ in fresh]).update(
            status=BatchStatus.CANCELLED, skipped_count=F("item_count"), finished_at=Now(), claim_token=None,
        )
        transaction.on_commit(lambda: metrics.batch_ended(job.data_type, "cancelled", skipped=skipped,
                                                          batches=len(fresh)))
    if reruns:
        # A re-run of committed work that never started: the batch keeps what it had.
        Batch.objects.filter(id__in=reruns).update(status=BatchStatus.SUCCEEDED, rerun_scope=RerunScope.ALL,
                                                   claim_token=None, next_attempt_at=None)
        kept = Batch.objects.filter(id__in=reruns).aggregate(p=Sum("processed_count"), f=Sum("failed_count"))
        transaction.on_commit(lambda: metrics.batch_ended(job.data_type, "succeeded", kept["p"] or 0, kept["f"] or 0,
                                                          batches=len(reruns)))
    apply_job_delta(job.id, items_skipped=skipped, batches_cancelled=len(fresh), batches_completed=len(reruns))
    rq_ids = [rq for _, _, _, rq in batches if rq]
    transaction.on_commit(lambda: _drop_messages(job, rq_ids))


def cancel_running_batch(batch_id: int, token: uuid.UUID | None) -> None:
    """A running batch noticed its job's cancellation (or failed after it): nothing of the run
    is kept and its items count as skipped (a re-run keeps its earlier results)."""
    with transaction.atomic():
        batch = (Batch.objects.select_for_update(of=("self",)).select_related("job")
                 .filter(id=batch_id, status=BatchStatus.RUNNING).first())
        if batch is None or (token and batch.claim_token != token):
            return
        if batch.rerun_scope:
            Batch.objects.filter(id=batch_id).update(status=BatchStatus.SUCCEEDED, rerun_scope=RerunScope.ALL,
                                                     claim_token=None, finished_at=Now())
            apply_job_delta(batch.job_id, batches_completed=1)
            transaction.on_commit(lambda: metrics.batch_ended(batch.job.data_type, "succeeded",
                                                              batch.processed_count, batch.failed_count))
        else:
            Batch.objects.filter(id=batch_id).update(status=BatchStatus.CANCELLED, skipped_count=batch.item_count,
                                                     claim_token=None, finished_at=Now())
            apply_job_delta(batch.job_id, items_skipped=batch.item_count, batches_cancelled=1)
            transaction.on_commit(lambda: metrics.batch_ended(batch.job.data_type, "cancelled",
                                                              skipped=batch.item_count))
    log_event("batch.cancelled", batch.job, batch=batch.number, attempt=batch.attempts)
    from jobs.services.finalizer import finalize_if_ready

    finalize_if_ready(batch.job_id)


def _drop_messages(job: ProcessingJob, rq_ids: list[str]) -> None:
    """Best effort: remove the cancelled batches' messages from Redis. Workers would skip
    them anyway (PostgreSQL says cancelled); this only keeps queues short."""
    from rq.job import Job

    from jobs.datatypes.registry import get_data_type
    from zenith.infra.redis import get_redis

    try:
        connection = get_redis()
        queue = dispatch.get_queue(dispatch.queue_name(get_data_type(job.data_type).queue, job.priority))
        for rq_job in Job.fetch_many(rq_ids, connection=connection):
            if rq_job is not None and rq_job.get_status(refresh=False) in ("queued", "scheduled", "deferred"):
                queue.remove(rq_job.id)
                rq_job.delete()
    except Exception:
        logger.warning("could not drop queued messages of job %s", job.id, exc_info=True)


@dataclasses.dataclass
class RetryReport:
    dead_batches: int
    rerun_batches: int
    items: int


def retry_job(job_id: uuid.UUID, *, scope: str = RerunScope.FAILURES, batch_ids: list[int] | None = None,
              actor: Any = None) -> RetryReport:
    """Re-runs a job's dead-lettered batches and, with `scope`, its failed items ("errors":
    items whose processing raised; "failures": also those rejected by validation, useful
    after a handler fix). Good results already committed are never redone or recounted.
    `actor` (the user, None for a command) goes to the audit log."""
    if scope not in (RerunScope.ERRORS, RerunScope.FAILURES, "dead"):
        raise ValueError("scope must be 'errors', 'failures' or 'dead'")
    with transaction.atomic():
        job = ProcessingJob.objects.select_for_update().get(id=job_id)
        if job.status == JobStatus.CANCELLED:
            raise JobStateError("Job is cancelled; submit it again instead")
        batches = Batch.objects.select_for_update().filter(job_id=job.id)
        if batch_ids is not None:
            batches = batches.filter(id__in=batch_ids)
        dead = list(batches.filter(status=BatchStatus.DEAD))
        reruns: list[Batch] = []
        if scope != "dead":
            kinds = [FailureKind.ERROR] if scope == RerunScope.ERRORS else [FailureKind.ERROR, FailureKind.INVALID]
            with_failures = ItemFailure.objects.filter(job_id=job.id, kind__in=kinds).values("batch_id")
            reruns = list(batches.filter(status=BatchStatus.SUCCEEDED, id__in=with_failures))
        if not dead and not reruns:
            raise JobStateError("Nothing to retry: the job has no dead-lettered batches or failed items")
        items = 0
        released_failed = 0
        for batch in dead:
            first_run = not batch.rerun_scope
            if first_run:
                released_failed += batch.failed_count
                items += batch.item_count
            else:
                items += batch.failed_count
            Batch.objects.filter(id=batch.id, status=BatchStatus.DEAD).update(
                status=BatchStatus.PENDING, attempts=0, failed_count=0 if first_run else batch.failed_count,
                claim_token=None, next_attempt_at=None, finished_at=None,
            )
        for batch in reruns:
            items += batch.failed_count
            Batch.objects.filter(id=batch.id, status=BatchStatus.SUCCEEDED).update(
                status=BatchStatus.PENDING, attempts=0, rerun_scope=scope, claim_token=None,
            )
        apply_job_delta(job.id, batches_failed=-len(dead), batches_completed=-len(reruns),
                        items_failed=-released_failed)
        ProcessingJob.objects.filter(id=job.id).update(
            status=JobStatus.PROCESSING, completed_at=None, error_message="", retry_count=job.retry_count + 1,
        )
        job.refresh_from_db()
        dispatch.fill_window(job, pace=False)
        requeue = scope == "dead" and batch_ids is not None
        audit.record(actor=actor, action=AuditAction.BATCHES_REQUEUED if requeue else AuditAction.JOB_RETRIED,
                     project=job.project_id, target=f"job:{job.id}",
                     details={"scope": str(scope), "dead_batches": len(dead), "rerun_batches": len(reruns),
                              "items": items, **({"batch_ids": sorted(b.id for b in dead)} if requeue else {})})
    log_event("job.retried", job, dead_batches=len(dead), rerun_batches=len(reruns), items=items)
    return RetryReport(dead_batches=len(dead), rerun_batches=len(reruns), items=items)


def requeue_dead_batches(job_id: uuid.UUID, batch_ids: list[int] | None = None, *, actor: Any = None) -> RetryReport:
    return retry_job(job_id, scope="dead", batch_ids=batch_ids, actor=actor)


def _now():
    return timezone.now()


__all__ = [
    "JobAlreadyFinished",
    "JobStateError",
    "RetryReport",
    "cancel_job",
    "cancel_running_batch",
    "cancel_unstarted_batches",
    "requeue_dead_batches",
    "retry_job",
]


def force_breaker(data_type: str, state: str, *, actor: Any = None) -> dict:
    """Operator override of a data type's circuit breaker: "open", "closed" or "auto". The
    audit entry is written once the override holds (it names no project: breakers are shared)."""
    from jobs.engine import breaker
    from monitoring import alerts
    from zenith.infra.redis import get_redis

    redis = get_redis()
    breaker.force(redis, data_type, None if state == "auto" else state)
    if state == "open":
        alerts.raise_alert(f"breaker:{data_type}", "critical",
                           f"Circuit breaker for '{data_type}' forced open by an operator", {"data_type": data_type})
    else:
        alerts.resolve_alert(f"breaker:{data_type}", f"Circuit breaker for '{data_type}' set to {state} by an operator")
    logger.warning("breaker forced", extra={"event": "breaker.forced", "data_type": data_type, "state": state})
    audit.record(actor=actor, action=AuditAction.BREAKER_FORCED, target=f"breaker:{data_type}",
                 details={"state": state})
    return breaker.status(redis, data_type)
