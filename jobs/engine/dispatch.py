"""Handing batches to RQ: queue choice, priorities, and each job's window of batches.

A job does not push all of its batches into Redis at submission. It keeps a *window* of
batches queued or running (`window_size`: the optimizer's choice, widened to the job's share
of idle workers by jobs.engine.capacity); each batch that ends (or goes to wait for a retry)
lets the next pending one in. This is how the per-job concurrency
is held across the whole cluster, and it keeps Redis small (a 1M-item job holds a handful of
messages, not 2,000), makes cancellation cheap (pending batches were never sent) and makes a
flushed Redis easy to recover from (the reconciler re-sends what PostgreSQL says is queued).

Priorities 1-10 map to three bands of each queue (8-10 high, 4-7 normal, 1-3 low) that
workers drain in that order. Within a band the first three batches of a job go to the front
of the queue (ahead of every job already waiting there, in their own order 1, 2, 3), as in the
seed, so a new job shows progress quickly; its later batches join at the back.

Every message is sent after the transaction that marked its batch queued commits
(`on_commit`), carries only the batch id, and has its RQ job id stored on the batch first, so
the reconciler can always tell whether Redis still holds it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone
from rq import Queue

from jobs import sql
from jobs.datatypes.registry import DataTypeSpec, get_data_type
from jobs.engine import capacity
from jobs.models import ACTIVE_BATCH_STATUSES, Batch, BatchStatus, ProcessingJob
from zenith.infra.redis import get_redis

logger = logging.getLogger(__name__)

RUN_BATCH = "jobs.tasks.run_batch"
FINALIZE_JOB = "jobs.tasks.finalize_job"
FRONT_BATCHES = 3


def band_for_priority(priority: int) -> str:
    if priority >= 8:
        return "high"
    if priority <= 3:
        return "low"
    return "normal"


def queue_name(base: str, priority: int) -> str:
    band = band_for_priority(priority)
    return base if band == "normal" else f"{base}-{band}"


def worker_queue_names(bases: list[str] | None = None) -> list[str]:
    """All queue names a worker should listen to, in priority order."""
    bases = bases or settings.ZENITH_BASE_QUEUES
    return [queue_name(base, p) for p in (9, 5, 1) for base in bases]


def get_queue(name: str) -> Queue:
    return Queue(name, connection=get_redis(), default_timeout=settings.RQ_DEFAULT_TIMEOUT)


def _batch_timeout(spec: DataTypeSpec) -> int:
    # RQ's timeout is the hard time limit; the worker may first sleep briefly for a throttle slot.
    return int(spec.time_limit + settings.ZENITH_THROTTLE_MAX_INLINE_WAIT + 5)


def _message(queue: Queue, batch_id: int, rq_job_id: str, spec: DataTypeSpec):
    return queue.create_job(
        RUN_BATCH, args=(batch_id,), job_id=rq_job_id, timeout=_batch_timeout(spec),
        result_ttl=settings.RQ_RESULT_TTL, failure_ttl=settings.RQ_RESULT_TTL * 6,
        description=f"{spec.name} batch {batch_id}",
    )


def send_batch(batch_id: int, rq_job_id: str, spec: DataTypeSpec, priority: int, *, at_front: bool = False,
               delay: float = 0.0) -> None:
    """Puts one batch message on its queue now (or in `delay` seconds, via RQ's scheduler)."""
    queue = get_queue(queue_name(spec.queue, priority))
    job = _message(queue, batch_id, rq_job_id, spec)
    if delay > 0:
        queue.schedule_job(job, timezone.now() + dt.timedelta(seconds=delay))
    else:
        queue.enqueue_job(job, at_front=at_front)


def send_batches(messages: list[tuple[int, str, bool]], spec: DataTypeSpec, priority: int) -> None:
    """Puts (batch id, RQ id, at front) messages on their queue in one Redis transaction, in
    this order. Sent one by one, an idle worker took each as it arrived: the front batches,
    pushed 3, 2, 1 so that a busy queue reads 1, 2, 3, started as 3, 2 (and 1 waited for the
    end of their chains)."""
    queue = get_queue(queue_name(spec.queue, priority))
    with queue.connection.pipeline() as pipe:
        for batch_id, rq_job_id, at_front in messages:
            queue.enqueue_job(_message(queue, batch_id, rq_job_id, spec), pipeline=pipe, at_front=at_front)
        pipe.execute()


def send_on_commit(batch_id: int, rq_job_id: str, spec: DataTypeSpec, priority: int, *, at_front: bool = False,
                   delay: float = 0.0) -> None:
    def send() -> None:
        try:
            send_batch(batch_id, rq_job_id, spec, priority, at_front=at_front, delay=delay)
        except Exception:
            # PostgreSQL says "queued"; the reconciler re-sends once the grace period passes.
            logger.warning("could not send batch %s to RQ; the reconciler will retry", batch_id, exc_info=True)

    transaction.on_commit(send)


@dataclasses.dataclass(frozen=True)
class Window:
    queued: int
    kept: int | None = None  # handed to the calling message instead of a message of its own


def window_size(job: ProcessingJob, spec: DataTypeSpec | None = None) -> int:
    """How many of the job's batches may be queued or running now (jobs.engine.capacity)."""
    spec = spec or get_data_type(job.data_type)
    return capacity.window_size(job, spec, queue_name(spec.queue, job.priority))


def fill_window(job: ProcessingJob, *, pace: bool = True, keep_for: str | None = None,
                spec: DataTypeSpec | None = None) -> Window:
    """Moves pending batches of `job` to queued until its window is full. Call inside a
    transaction; messages go out when it commits. With `keep_for` (the RQ id of the message
    running now), the first batch is kept for that message to run next (a chain) instead."""
    spec = spec or get_data_type(job.data_type)
    cap = window_size(job, spec)
    delay_ms = int((job.batch_config or {}).get("delay_between_batches_ms") or 0) if pace else 0
    not_before = timezone.now() + dt.timedelta(milliseconds=delay_ms) if delay_ms else None
    pick = _pick_postgres if connection.vendor == "postgresql" else _pick_generic
    picked = sorted(pick(job, cap, not_before, keep_for), key=lambda row: row[1])
    if not picked:
        return Window(0)
    kept = None
    # Each at_front push goes onto the head of the queue, so the front batches go in reverse
    # to come out as 1, 2, 3; all in one Redis transaction once this one commits.
    front = [row for row in picked if row[1] <= FRONT_BATCHES]
    messages = []
    for batch_id, number, rq_job_id in [*reversed(front), *picked[len(front):]]:
        if keep_for is not None and rq_job_id == keep_for:
            kept = batch_id
        else:
            messages.append((batch_id, rq_job_id, number <= FRONT_BATCHES))
    if messages:
        _send_all_on_commit(messages, spec, job.priority)
    return Window(len(picked), kept)


def _send_all_on_commit(messages: list[tuple[int, str, bool]], spec: DataTypeSpec, priority: int) -> None:
    def send() -> None:
        try:
            send_batches(messages, spec, priority)
        except Exception:
            # PostgreSQL says "queued"; the reconciler re-sends once the grace period passes.
            logger.warning("could not send batches %s to RQ; the reconciler will retry",
                           [batch_id for batch_id, _, _ in messages], exc_info=True)

    transaction.on_commit(send)


def _pick_postgres(job: ProcessingJob, cap: int, not_before, keep_for: str | None) -> list[tuple[int, int, str]]:
    return sql.pick_window(job.id, cap, not_before, keep_for)


def _pick_generic(job: ProcessingJob, cap: int, not_before, keep_for: str | None) -> list[tuple[int, int, str]]:
    active = Batch.objects.filter(job_id=job.id, status__in=ACTIVE_BATCH_STATUSES).count()
    wanted = cap - active
    if wanted <= 0:
        return []
    candidates = list(
        Batch.objects.select_for_update(skip_locked=True)
        .filter(job_id=job.id, status=BatchStatus.PENDING)
        .order_by("number")
        .values_list("id", "number")[:wanted]
    )
    picked = []
    for batch_id, number in candidates:
        rq_job_id = keep_for if keep_for is not None and not picked else uuid.uuid4().hex
        if Batch.objects.filter(id=batch_id, status=BatchStatus.PENDING).update(
                status=BatchStatus.QUEUED, queued_at=Now(), rq_job_id=rq_job_id, not_before=not_before):
            picked.append((batch_id, number, rq_job_id))
    return picked


def resend(batch: Batch, *, delay: float = 0.0) -> bool:
    """Gives a queued or retrying batch a fresh RQ message (its old one is gone, failed, or
    must wait longer). Compare-and-set on the old RQ id, so two reconcilers never both send."""
    job = batch.job
    spec = get_data_type(job.data_type)
    rq_job_id = uuid.uuid4().hex
    with transaction.atomic():
        updated = Batch.objects.filter(
            id=batch.id, status__in=[BatchStatus.QUEUED, BatchStatus.RETRYING], rq_job_id=batch.rq_job_id
        ).update(rq_job_id=rq_job_id, queued_at=Now())
        if updated:
            send_on_commit(batch.id, rq_job_id, spec, job.priority, delay=delay)
    return bool(updated)


def send_finalizer_on_commit(job: ProcessingJob) -> None:
    spec = get_data_type(job.data_type)

    def send() -> None:
        try:
            queue = get_queue(queue_name(spec.queue, max(job.priority, 8)))
            queue.enqueue_call(FINALIZE_JOB, args=(str(job.id),), at_front=True,
                               result_ttl=settings.RQ_RESULT_TTL, timeout=settings.RQ_DEFAULT_TIMEOUT,
                               description=f"finalize {spec.name} job {job.id}")
        except Exception:
            logger.warning("could not enqueue the finalizer of job %s; the reconciler will run it", job.id,
                           exc_info=True)

    transaction.on_commit(send)
