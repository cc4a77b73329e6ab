"""The reconciler: makes Redis agree with PostgreSQL again, so no job stays unfinished.

Runs every minute (monitoring.schedules) and on demand. Each pass:
1. Running batches whose heartbeat is older than ZENITH_BATCH_LEASE_SECONDS belong to a
   worker that died (kill -9, OOM, lost host): the attempt is recorded as `lost` and the
   batch retried with backoff, or dead-lettered when out of retries. If the worker was only
   slow, its later commit fails the claim-token check and rolls back: counted once.
2. Queued or retrying batches whose RQ message is gone (Redis flushed or restarted empty),
   failed, stuck, or scheduled but long overdue (no live RQ scheduler) are sent again, after
   a grace period that covers the commit-to-enqueue gap.
3. Jobs with pending batches and a window that is not full get it refilled.
4. Cancelled jobs get their leftover unstarted batches cancelled.
5. Jobs whose batches have all ended but that are not finalized are finalized.

Everything it changes is compare-and-set, so two reconcilers at once are safe; a Redis lock
still keeps them from doing the same work twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.conf import settings
from django.db.models import Count, F, Q
from django.db.models.functions import Now
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.registry import ScheduledJobRegistry

from jobs.engine import dispatch
from jobs.models import ACTIVE_BATCH_STATUSES, AttemptOutcome, Batch, BatchStatus, ProcessingJob
from jobs.services.control import cancel_unstarted_batches
from jobs.services.execution import record_failed_attempt
from jobs.services.finalizer import finalize_job
from zenith.infra.redis import get_redis

logger = logging.getLogger(__name__)

LOCK_KEY = "zenith:reconciler:lock"
HEALTHY_RQ_STATES = {"queued", "scheduled", "deferred"}


@dataclasses.dataclass
class ReconcileReport:
    lost_batches: int = 0
    resent_batches: int = 0
    windows_refilled: int = 0
    cancelled_leftovers: int = 0
    finalized_jobs: int = 0
    skipped: bool = False

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def changed(self) -> bool:
        return any((self.lost_batches, self.resent_batches, self.windows_refilled, self.cancelled_leftovers,
                    self.finalized_jobs))


def reconcile(limit: int = 1000) -> ReconcileReport:
    report = ReconcileReport()
    redis = get_redis()
    lock = redis.lock(LOCK_KEY, timeout=max(30, settings.ZENITH_RECONCILE_INTERVAL_SECONDS), blocking=False)
    if not lock.acquire(blocking=False):
        report.skipped = True
        return report
    try:
        now = timezone.now()
        report.lost_batches = _recover_lost_batches(now, limit)
        report.resent_batches = _resend_missing_messages(now, limit, redis)
        report.cancelled_leftovers = _cancel_leftovers()
        report.windows_refilled = _refill_windows()
        report.finalized_jobs = _finalize_finished_jobs()
    finally:
        try:
            lock.release()
        except Exception:
            pass
    if report.changed:
        logger.warning("reconciler repaired state", extra={"event": "reconciler.repaired", **report.as_dict()})
    return report


def _recover_lost_batches(now: dt.datetime, limit: int) -> int:
    # Heartbeats are written with the database's clock; compare with it too, so a skewed
    # clock on the reconciler's host cannot make a live batch look dead.
    cutoff = Now() - dt.timedelta(seconds=settings.ZENITH_BATCH_LEASE_SECONDS)
    stale = list(Batch.objects.filter(status=BatchStatus.RUNNING, heartbeat_at__lt=cutoff)
                 .values_list("id", "claim_token", "worker_name", "heartbeat_at")[:limit])
    recovered = 0
    for batch_id, token, worker, heartbeat in stale:
        status = record_failed_attempt(
            batch_id, token, AttemptOutcome.LOST,
            f"worker {worker or '?'} stopped heartbeating (last heartbeat {heartbeat:%H:%M:%S} UTC)", "", worker,
        )
        recovered += status is not None
    return recovered


def _resend_missing_messages(now: dt.datetime, limit: int, redis) -> int:
    grace = dt.timedelta(seconds=settings.ZENITH_REQUEUE_GRACE_SECONDS)
    candidates = list(
        Batch.objects.select_related("job")
        .filter(Q(status=BatchStatus.QUEUED, queued_at__lt=now - grace)
                | Q(status=BatchStatus.RETRYING, next_attempt_at__lt=now - grace))
        .order_by("id")[:limit]
    )
    if not candidates:
        return 0
    rq_jobs = RQJob.fetch_many([b.rq_job_id or "-" for b in candidates], connection=redis)
    resent = 0
    for batch, rq_job in zip(candidates, rq_jobs, strict=True):
        if _message_is_healthy(batch, rq_job, now):
            continue
        if dispatch.resend(batch):
            resent += 1
    return resent


def _message_is_healthy(batch: Batch, rq_job: RQJob | None, now: dt.datetime) -> bool:
    if rq_job is None:
        return False
    state = rq_job.get_status(refresh=False)
    if state == "scheduled":
        # Due long ago but still waiting: no RQ scheduler is moving it (the host holding
        # RQ's scheduler lock died; a standby only retries the lock every two minutes).
        try:
            due = ScheduledJobRegistry(rq_job.origin, connection=rq_job.connection).get_scheduled_time(rq_job)
        except NoSuchJobError:
            return False  # marked scheduled but in no registry: nothing would ever enqueue it
        return (now - due).total_seconds() < settings.ZENITH_REQUEUE_GRACE_SECONDS
    if state in HEALTHY_RQ_STATES:
        return True
    if state == "started":
        # A worker holds the message but has not claimed the batch: it is sleeping for a
        # throttle slot (at most ZENITH_THROTTLE_MAX_INLINE_WAIT), or about to claim, or it
        # died. For a batch handed on within a chain, the message started long ago, so count
        # from whichever is later: the message's start or the batch's queueing.
        reference = max(_aware(rq_job.started_at) or batch.queued_at, batch.queued_at or now)
        allowance = settings.ZENITH_REQUEUE_GRACE_SECONDS + settings.ZENITH_THROTTLE_MAX_INLINE_WAIT
        return (now - reference).total_seconds() < allowance
    return False  # finished, failed, stopped or canceled while PostgreSQL still waits for it


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def _cancel_leftovers() -> int:
    job_ids = list(ProcessingJob.objects.filter(cancel_requested_at__isnull=False, completed_at__isnull=True)
                   .values_list("id", flat=True)[:200])
    for job_id in job_ids:
        cancel_unstarted_batches(job_id)
    return len(job_ids)


def _refill_windows() -> int:
    jobs = (ProcessingJob.objects.filter(completed_at__isnull=True, cancel_requested_at__isnull=True)
            .annotate(pending=Count("batches", filter=Q(batches__status=BatchStatus.PENDING)),
                      active=Count("batches", filter=Q(batches__status__in=ACTIVE_BATCH_STATUSES)))
            .filter(pending__gt=0))
    refilled = 0
    from django.db import transaction

    for job in jobs[:500]:
        if job.active >= dispatch.window_size(job):
            continue
        with transaction.atomic():
            refilled += dispatch.fill_window(job, pace=False).queued
    return refilled


def _finalize_finished_jobs() -> int:
    ready = (ProcessingJob.objects.filter(completed_at__isnull=True)
             .filter(total_batches__lte=F("batches_completed") + F("batches_failed") + F("batches_cancelled"))
             .values_list("id", flat=True)[:200])
    return sum(1 for job_id in list(ready) if finalize_job(job_id))
