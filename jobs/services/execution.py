"""Running one batch: the worker side of Zenith.

A batch message carries only the batch id. The worker then
1. skips it unless PostgreSQL says the batch is queued (duplicate deliveries are harmless);
2. defers it, using no attempt, while the data type's circuit breaker is open, while the
   job's pacing delay has not passed, or while the cluster-wide throttle has no slot;
3. claims it with a compare-and-set (`queued -> running`, new claim token);
4. validates every item outside any transaction, writing a heartbeat (and reading the job's
   cancel flag, and checking the soft time limit) every couple of seconds;
5. commits results, item failures, the batch's new state and the job's counters in one
   transaction guarded by the claim token. If the token changed (the reconciler gave the
   batch to another worker after this one went silent), the whole commit rolls back, so a
   batch can run twice but is counted once.

Failures are kept apart. A record rejected by validation fails only itself and is final.
An item whose processing *raised* is the system's fault: the good items are committed, and
the batch goes back to `retrying` for just those items, with exponential backoff and jitter,
until the retries run out. An exception of the batch as a whole (database gone, time limit,
worker lost) commits nothing and retries the batch; after the last retry it is dead-lettered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import random
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models.functions import Now
from django.utils import timezone
from rq.timeouts import JobTimeoutException

from jobs import sql
from jobs.datatypes.base import BatchContext, RecordRejected, merge_stats
from jobs.datatypes.registry import DataTypeSpec, get_data_type
from jobs.engine import breaker, dispatch, payloads, throttle
from jobs.engine.worker import SHUTDOWN
from jobs.models import (
    AttemptOutcome,
    Batch,
    BatchAttempt,
    BatchStatus,
    FailureKind,
    ItemFailure,
    JobStatus,
    ProcessingJob,
    RerunScope,
)
from jobs.services.accounting import WAITING_PREFIX, apply_job_delta
from monitoring import alerts
from zenith.infra import metrics
from zenith.infra.events import log_event
from zenith.infra.logging import correlation
from zenith.infra.redis import get_redis

logger = logging.getLogger(__name__)

CHECK_EVERY_ITEMS = 64

class BatchCancelled(Exception):
    """The job was cancelled while this batch ran; nothing of the run is kept."""


class LeaseLost(Exception):
    """Another worker owns the batch now (this one was presumed dead)."""


class SoftTimeLimitExceeded(Exception):
    pass


# Exceptions that end the whole run of a batch instead of failing one item.
BATCH_FATAL = (BatchCancelled, LeaseLost, SoftTimeLimitExceeded, JobTimeoutException, DatabaseError)


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter (docs/design.md, "Two kinds of failure"): base * 2^(attempt-1), capped at
    ZENITH_RETRY_BACKOFF_MAX, then a random point in its upper half so that batches failing
    together do not come back together."""
    ceiling = min(settings.ZENITH_RETRY_BACKOFF_MAX, settings.ZENITH_RETRY_BACKOFF_BASE * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


@dataclasses.dataclass
class BatchRun:
    """What one run of a batch carries from its claim to its commit."""

    batch: Batch
    job: ProcessingJob
    spec: DataTypeSpec
    token: uuid.UUID  # the claim: every write of the run is a compare-and-set on it
    worker_name: str
    # The RQ id of the message running now, when it may run the job's next batch (a chain).
    keep_for: str | None = None
    chain_until: float = float("inf")
    started: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How a run that committed ended."""

    status: str  # "succeeded" or "retrying" (BatchStatus values)
    processed: int
    failed: int
    errors: int  # items whose processing raised (the system's fault)
    next_batch: int | None  # a batch handed to this message to run next (a chain)


@dataclasses.dataclass
class ItemResults:
    rows: list[tuple[int, Any]]
    failures: list[ItemFailure]
    error_count: int


class _Checkpoint:
    """Called between items: cheap unless a heartbeat is due."""

    def __init__(self, batch_id: int, token: uuid.UUID, job_id: uuid.UUID, soft_limit: float):
        self.batch_id = batch_id
        self.token = token
        self.job_id = job_id
        self.soft_deadline = time.monotonic() + soft_limit
        self.soft_limit = soft_limit
        self.interval = settings.ZENITH_HEARTBEAT_SECONDS
        self.last = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now >= self.soft_deadline:
            raise SoftTimeLimitExceeded(f"soft time limit of {self.soft_limit:g} s exceeded")
        if now - self.last < self.interval:
            return
        self.last = now
        alive = Batch.objects.filter(id=self.batch_id, status=BatchStatus.RUNNING, claim_token=self.token).update(
            heartbeat_at=Now()
        )
        if not alive:
            raise LeaseLost(f"batch {self.batch_id} was taken over by another worker")
        if ProcessingJob.objects.filter(id=self.job_id, cancel_requested_at__isnull=False).exists():
            raise BatchCancelled()


def run_batch(batch_id: int, worker_name: str = "", message_id: str | None = None) -> str:
    """Entry point for one batch message. Returns a short word for RQ's result.

    `message_id` is the RQ job id of the message being handled; a message that is no longer
    the batch's current one (superseded by a resend) is ignored.

    A message may run a chain of its job's batches: when a batch commits, the transaction
    that refills the job's window can hand the next pending batch to this same message
    instead of sending it a message of its own, for up to ZENITH_CHAIN_SECONDS (decided at
    each commit, so the worker is free again at most one batch after the deadline). That saves
    RQ's bookkeeping per batch (a large share of a batch's time: docs/performance.md) while
    other jobs still get the worker at least every few seconds. A warm shutdown ends the
    chain after the current batch."""
    worker_name = worker_name or default_worker_name()
    chain_until = time.monotonic() + settings.ZENITH_CHAIN_SECONDS if message_id else 0.0
    word, next_id = _run_one(batch_id, worker_name, message_id, chain_until)
    while next_id is not None:
        word, next_id = _run_one(next_id, worker_name, message_id, chain_until)
    return word


def _run_one(batch_id: int, worker_name: str, message_id: str | None,
             chain_until: float) -> tuple[str, int | None]:
    """Runs one batch if PostgreSQL says it may. Returns (a word for RQ, the id of the next
    batch this message should run, if any)."""
    batch = sql.load_batch(batch_id)
    if batch is None:
        return "missing", None
    with correlation(batch.job.correlation_id):
        return _run_loaded(batch, batch.job, worker_name, message_id, chain_until)


def _run_loaded(batch: Batch, job: ProcessingJob, worker_name: str, message_id: str | None,
                chain_until: float) -> tuple[str, int | None]:
    if batch.status not in (BatchStatus.QUEUED, BatchStatus.RETRYING):
        return f"skipped:{batch.status}", None
    if message_id and batch.rq_job_id and message_id != batch.rq_job_id:
        return "superseded", None
    if job.cancel_requested_at:
        from jobs.services.control import cancel_unstarted_batches

        cancel_unstarted_batches(job.id)
        return "cancelled", None
    spec = get_data_type(job.data_type)
    redis = get_redis()

    wait_reason, probe = _gate(batch, job, spec, redis)
    if wait_reason is not None:
        return wait_reason, None

    token = _claim(batch, job, worker_name)
    if token is None:
        _release_probe(redis, spec, probe)
        return "claimed-elsewhere", None
    _restart_hard_limit(spec.time_limit)
    chaining = chain_until and time.monotonic() < chain_until and not SHUTDOWN.is_set()
    run = BatchRun(batch, job, spec, token, worker_name, keep_for=message_id if chaining else None,
                   chain_until=chain_until)
    try:
        outcome = _execute(run)
    except (KeyboardInterrupt, SystemExit):
        _release_interrupted(batch.id, token, worker_name)
        _release_probe(redis, spec, probe)
        raise
    except BatchCancelled:
        from jobs.services.control import cancel_running_batch

        cancel_running_batch(batch.id, token)
        _release_probe(redis, spec, probe)
        return "cancelled", None
    except LeaseLost:
        log_event("batch.lease_lost", job, level=logging.WARNING, batch=batch.number, attempt=batch.attempts)
        return "lease-lost", None
    except Exception as exc:
        _reset_broken_connections()
        outcome_kind = (AttemptOutcome.TIMEOUT if isinstance(exc, (JobTimeoutException, SoftTimeLimitExceeded))
                        else AttemptOutcome.ERROR)
        record_failed_attempt(batch.id, token, outcome_kind, f"{type(exc).__name__}: {exc}",
                              traceback.format_exc(), worker_name)
        _record_breaker(redis, spec, ok=0, errors=batch.item_count, probe=probe)
        metrics.batch_run(spec.name, outcome_kind, time.monotonic() - run.started,
                          attempted=batch.item_count, system_errors=batch.item_count)
        return "error", None
    metrics.batch_run(spec.name, outcome.status, time.monotonic() - run.started,
                      attempted=outcome.processed + outcome.failed, system_errors=outcome.errors)
    _record_breaker(redis, spec, ok=outcome.processed, errors=outcome.errors, probe=probe)
    return outcome.status, outcome.next_batch


def _restart_hard_limit(seconds: int) -> None:
    """Counts the hard time limit from the claim, not from the dequeue: RQ armed SIGALRM for
    the whole message (including a throttle wait); re-arming keeps RQ's handler, which raises
    JobTimeoutException inside the batch. Only done where that handler is installed (an RQ
    worker's main thread), never in a process without one, where SIGALRM would kill it."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None):
        return
    signal.alarm(max(1, int(seconds)))


def _gate(batch: Batch, job: ProcessingJob, spec: DataTypeSpec, redis) -> tuple[str | None, bool]:
    """Breaker, pacing and throttle. Returns (a word, False) when the batch must wait (it has
    then been rescheduled, using no attempt), else (None, whether it is the breaker's probe)."""
    decision = breaker.allow(redis, spec.name, probe_lease=spec.time_limit + 30)
    if not decision.allowed:
        wait = max(1.0, decision.retry_after)
        state = breaker.status(redis, spec.name)
        until = timezone.now() + dt.timedelta(seconds=wait)
        ProcessingJob.objects.filter(id=job.id, completed_at__isnull=True).update(
            error_message=f"{WAITING_PREFIX}the '{spec.name}' circuit breaker is {decision.state.replace('_', '-')} "
                          f"({state.get('reason') or 'recovering'}); next try at {until:%H:%M:%S} UTC"
        )
        dispatch.resend(batch, delay=wait)
        log_event("batch.deferred", job, batch=batch.number, reason="breaker", wait_s=round(wait, 2))
        return "deferred:breaker", False

    max_inline = settings.ZENITH_THROTTLE_MAX_INLINE_WAIT
    if batch.not_before:
        wait = (batch.not_before - timezone.now()).total_seconds()
        if wait > max_inline:
            _release_probe(redis, spec, decision.probe)
            dispatch.resend(batch, delay=wait)
            return "deferred:pacing", False
        if wait > 0:
            time.sleep(wait)

    slot = throttle.wait_for_slot(redis, spec, batch.item_count, max_inline)
    if not slot.reserved:
        _release_probe(redis, spec, decision.probe)
        metrics.throttle_wait(spec.name, slot.wait_seconds, deferred=True)
        dispatch.resend(batch, delay=slot.wait_seconds)
        return "deferred:throttle", False
    if slot.wait_seconds > 0:
        metrics.throttle_wait(spec.name, slot.wait_seconds, deferred=False)
    return None, decision.probe


def _release_probe(redis, spec: DataTypeSpec, probe: bool) -> None:
    if probe:
        breaker.release_probe(redis, spec.name)


def _claim(batch: Batch, job: ProcessingJob, worker_name: str) -> uuid.UUID | None:
    token = uuid.uuid4()
    if not sql.claim(batch, token, worker_name):
        return None
    batch.attempts += 1
    batch.started_at = timezone.now()  # the row holds the database's clock; this is for attempt records
    if job.status == JobStatus.PENDING:
        ProcessingJob.objects.filter(id=job.id, status=JobStatus.PENDING).update(
            status=JobStatus.PROCESSING, started_at=Now()
        )
    log_event("batch.started", job, batch=batch.number, attempt=batch.attempts, worker=worker_name)
    return token


def _execute(run: BatchRun) -> RunOutcome:
    batch, job, spec = run.batch, run.job, run.spec
    payload = batch.payload
    items = payloads.decode_items(payload.codec, payload.data)
    scope = batch.rerun_scope
    indexes = range(batch.start_index, batch.start_index + batch.item_count)
    rerun_indexes: list[int] | None = None
    if scope:
        kinds = [FailureKind.ERROR] if scope == RerunScope.ERRORS else [FailureKind.ERROR, FailureKind.INVALID]
        rerun_indexes = sorted(
            ItemFailure.objects.filter(batch_id=batch.id, kind__in=kinds).values_list("item_index", flat=True)
        )
        indexes = rerun_indexes
    checkpoint = _Checkpoint(batch.id, run.token, job.id, spec.soft_time_limit)
    ctx = BatchContext(job_id=job.id, project_id=job.project_id, batch_id=batch.id, batch_number=batch.number,
                       data_type=spec.name, options=job.options or {}, attempt=batch.attempts,
                       checkpoint=checkpoint)
    results = _validate_items(run, items, indexes, ctx, checkpoint)
    checkpoint()
    return _commit(run, ctx, results, rerun_indexes)


def _validate_items(run: BatchRun, items: list[Any], indexes: Sequence[int], ctx: BatchContext,
                    checkpoint: _Checkpoint) -> ItemResults:
    batch, job, handler = run.batch, run.job, run.spec.handler
    rows: list[tuple[int, Any]] = []
    failures: list[ItemFailure] = []
    errors = 0
    quick = handler.quick_validator(ctx)
    for n, index in enumerate(indexes):
        if n % CHECK_EVERY_ITEMS == 0:
            checkpoint()
        record = items[index - batch.start_index]
        try:
            if not isinstance(record, dict):
                raise RecordRejected("not_an_object", "the record is not a JSON object")
            row = quick(record) if quick is not None else None
            rows.append((index, row if row is not None else handler.validate(record, ctx)))
        except RecordRejected as rejected:
            failures.append(ItemFailure(
                job_id=job.id, batch_id=batch.id, item_index=index, item_key=handler.item_key(record),
                kind=FailureKind.INVALID, error_code=rejected.code[:64], field=rejected.field[:64],
                message=rejected.message[:2000],
            ))
        except BATCH_FATAL:
            raise
        except Exception as exc:
            errors += 1
            failures.append(ItemFailure(
                job_id=job.id, batch_id=batch.id, item_index=index, item_key=handler.item_key(record),
                kind=FailureKind.ERROR, error_code=type(exc).__name__[:64],
                message=f"{type(exc).__name__}: {exc}"[:2000],
            ))
    return ItemResults(rows=rows, failures=failures, error_count=errors)


def _commit(run: BatchRun, ctx: BatchContext, results: ItemResults, rerun_indexes: list[int] | None) -> RunOutcome:
    batch, job, spec, token = run.batch, run.job, run.spec, run.token
    handler = spec.handler
    keep_for = run.keep_for
    if keep_for is not None and (time.monotonic() >= run.chain_until or SHUTDOWN.is_set()):
        # The chain's time ran out during this batch: hand the worker back to the queues now
        # (a higher band may be waiting) rather than after one more batch.
        keep_for = None
    retry_items = results.error_count > 0 and batch.attempts <= spec.max_retries
    delay = retry_delay(batch.attempts) if retry_items else 0.0
    if results.error_count and not retry_items:
        for failure in results.failures:
            if failure.kind == FailureKind.ERROR:
                failure.message = f"{failure.message} (gave up after {batch.attempts} attempts)"[:2000]
    status = BatchStatus.RETRYING if retry_items else BatchStatus.SUCCEEDED
    rq_job_id = uuid.uuid4().hex if retry_items else batch.rq_job_id
    last_error = ""
    if results.error_count:
        sample = next(f for f in results.failures if f.kind == FailureKind.ERROR)
        last_error = f"{results.error_count} item(s) raised, e.g. item {sample.item_index}: {sample.message}"
    ok = len(results.rows)
    with transaction.atomic():
        new_stats = handler.persist(results.rows, ctx) or {}
        if rerun_indexes is None:
            # A first run: the batch has committed nothing before, its counts start at zero.
            before_processed = before_failed = 0
            processed, failed = ok, len(results.failures)
        else:
            current = Batch.objects.select_for_update().filter(id=batch.id, status=BatchStatus.RUNNING,
                                                               claim_token=token).first()
            if current is None:
                raise LeaseLost(f"batch {batch.id} is no longer ours at commit")
            before_processed, before_failed = current.processed_count, current.failed_count
            processed = current.processed_count + ok
            failed = current.failed_count - len(rerun_indexes) + len(results.failures)
            ItemFailure.objects.filter(batch_id=batch.id, item_index__in=rerun_indexes).delete()
            new_stats = merge_stats(current.stats or {}, new_stats)
        # Compare-and-set on the claim: if the reconciler gave the batch to another worker,
        # nothing of this run is kept.
        ended = sql.end_run(
            batch.id, token, status=status, processed_count=processed, failed_count=failed, stats=new_stats,
            last_error=last_error[:4000], rq_job_id=rq_job_id,
            rerun_scope=RerunScope.ERRORS if retry_items else RerunScope.ALL,
            next_attempt_at=(timezone.now() + dt.timedelta(seconds=delay)) if retry_items else None,
        )
        if not ended:
            raise LeaseLost(f"batch {batch.id} is no longer ours at commit")
        if status == BatchStatus.SUCCEEDED:
            transaction.on_commit(lambda: metrics.batch_ended(spec.name, "succeeded", processed, failed))
        ItemFailure.objects.bulk_create(results.failures, batch_size=1000)
        if retry_items:
            BatchAttempt.objects.create(batch_id=batch.id, number=batch.attempts, outcome=AttemptOutcome.ITEM_ERRORS,
                                        worker_name=run.worker_name, started_at=batch.started_at,
                                        error=last_error[:4000])
            dispatch.send_on_commit(batch.id, rq_job_id, spec, job.priority, delay=delay)
        window = dispatch.fill_window(job, keep_for=keep_for, spec=spec)
        # Last: the job row's lock, which every batch of the job takes, is held from here
        # to the commit only.
        counters = apply_job_delta(
            job.id, clear_waiting=True,
            items_processed=processed - before_processed,
            items_failed=failed - before_failed,
            batches_completed=1 if status == BatchStatus.SUCCEEDED else 0,
        )
        if counters.all_batches_terminal and not counters.completed_at_set:
            dispatch.send_finalizer_on_commit(job)
    duration = time.monotonic() - run.started
    log_event("batch.succeeded" if status == BatchStatus.SUCCEEDED else "batch.retrying", job,
              level=logging.INFO if status == BatchStatus.SUCCEEDED else logging.WARNING,
              batch=batch.number, attempt=batch.attempts, duration_s=round(duration, 4), processed=ok,
              failed=len(results.failures), item_errors=results.error_count,
              retry_in_s=round(delay, 2) if retry_items else None)
    return RunOutcome(status=status.value, processed=ok, failed=len(results.failures), errors=results.error_count,
                      next_batch=window.kept)


def record_failed_attempt(batch_id: int, token: uuid.UUID | None, outcome: str, error: str, tb: str,
                          worker_name: str) -> str | None:
    """A run of the batch ended without a commit. Schedules the next attempt with backoff,
    or dead-letters the batch when retries are used up. Returns the new status."""
    from jobs.services.control import cancel_running_batch

    with transaction.atomic():
        batch = Batch.objects.select_for_update().select_related("job").filter(id=batch_id).first()
        if batch is None or batch.status != BatchStatus.RUNNING or (token and batch.claim_token != token):
            return None
        job = batch.job
        spec = get_data_type(job.data_type)
        BatchAttempt.objects.create(batch=batch, number=batch.attempts, outcome=outcome, worker_name=worker_name
                                    or batch.worker_name, started_at=batch.started_at, error=error[:4000],
                                    traceback=tb[-20000:])
        if job.cancel_requested_at:
            cancel_running_batch(batch.id, batch.claim_token)
            return BatchStatus.CANCELLED
        if batch.attempts <= spec.max_retries:
            delay = retry_delay(batch.attempts)
            rq_job_id = uuid.uuid4().hex
            Batch.objects.filter(id=batch.id).update(
                status=BatchStatus.RETRYING, claim_token=None, last_error=error[:4000], rq_job_id=rq_job_id,
                next_attempt_at=timezone.now() + dt.timedelta(seconds=delay), finished_at=Now(),
            )
            dispatch.send_on_commit(batch.id, rq_job_id, spec, job.priority, delay=delay)
            dispatch.fill_window(job)
            event, new_status = "batch.retry_scheduled", BatchStatus.RETRYING
        else:
            first_run = not batch.rerun_scope
            failed_items = batch.item_count if first_run else batch.failed_count
            Batch.objects.filter(id=batch.id).update(
                status=BatchStatus.DEAD, claim_token=None, last_error=error[:4000], finished_at=Now(),
                failed_count=failed_items,
            )
            dispatch.fill_window(job)
            counters = apply_job_delta(job.id, batches_failed=1,
                                       items_failed=failed_items - batch.failed_count,
                                       batches_completed=0)
            if counters.all_batches_terminal and not counters.completed_at_set:
                dispatch.send_finalizer_on_commit(job)
            event, new_status = "batch.dead_lettered", BatchStatus.DEAD
            transaction.on_commit(lambda: metrics.batch_ended(spec.name, "dead", batch.processed_count, failed_items))
    duration = (timezone.now() - batch.started_at).total_seconds() if batch.started_at else None
    log_event(event, job, level=logging.ERROR if new_status == BatchStatus.DEAD else logging.WARNING,
              batch=batch.number, attempt=batch.attempts, outcome=outcome, error=error[:500],
              duration_s=round(duration, 4) if duration is not None else None)
    return new_status


def _release_interrupted(batch_id: int, token: uuid.UUID, worker_name: str) -> None:
    """The worker is being shut down hard mid-batch: give the batch back at once (no attempt
    used) instead of waiting for its lease to expire."""
    try:
        _reset_broken_connections()
        with transaction.atomic():
            batch = Batch.objects.select_for_update().select_related("job").filter(
                id=batch_id, status=BatchStatus.RUNNING, claim_token=token).first()
            if batch is None:
                return
            BatchAttempt.objects.create(batch=batch, number=batch.attempts, outcome=AttemptOutcome.INTERRUPTED,
                                        worker_name=worker_name, started_at=batch.started_at,
                                        error="worker shut down during the batch; re-queued")
            rq_job_id = uuid.uuid4().hex
            Batch.objects.filter(id=batch.id).update(status=BatchStatus.QUEUED, claim_token=None,
                                                     attempts=max(0, batch.attempts - 1), rq_job_id=rq_job_id,
                                                     queued_at=Now())
            dispatch.send_on_commit(batch.id, rq_job_id, get_data_type(batch.job.data_type), batch.job.priority,
                                    at_front=True)
        log_event("batch.requeued", batch.job, level=logging.WARNING, batch=batch.number, reason="worker shutdown")
    except Exception:
        logger.exception("could not re-queue batch %s on shutdown; the reconciler will", batch_id)


def _reset_broken_connections() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            continue
        conn.close_if_unusable_or_obsolete()


def _record_breaker(redis, spec: DataTypeSpec, *, ok: int, errors: int, probe: bool) -> None:
    try:
        transition = breaker.record(redis, spec.name, ok, errors, probe=probe)
    except Exception:
        logger.warning("could not update the circuit breaker", exc_info=True)
        return
    if transition.event:
        alerts.breaker_transition(spec.name, transition.event, transition.error_rate, transition.volume)
