"""Retention: finished jobs older than ZENITH_RETENTION_DAYS are deleted with their batches,
stored payloads, attempts and item failures, a bounded chunk per transaction so a cleanup of
millions of rows never holds long locks. Result rows (e.g. transactions) belong to the
project and are kept; they only lose the link to the deleted job."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import Batch, BatchAttempt, BatchPayload, ItemFailure, ProcessingJob

logger = logging.getLogger(__name__)


def cleanup_old_jobs(retention_days: int | None = None, chunk: int | None = None) -> dict[str, int]:
    days = settings.ZENITH_RETENTION_DAYS if retention_days is None else retention_days
    chunk = chunk or settings.ZENITH_CLEANUP_CHUNK
    cutoff = timezone.now() - dt.timedelta(days=days)
    totals = {"jobs": 0, "batches": 0, "payloads": 0, "failures": 0, "attempts": 0}
    old_jobs = ProcessingJob.objects.filter(completed_at__isnull=False, completed_at__lt=cutoff).order_by("completed_at")
    while True:
        job_ids = list(old_jobs.values_list("id", flat=True)[:max(1, chunk // 50)])
        if not job_ids:
            break
        for job_id in job_ids:
            _delete_job(job_id, chunk, totals)
    if totals["jobs"]:
        logger.info("old jobs deleted", extra={"event": "maintenance.cleanup", "retention_days": days, **totals})
    return totals


def _delete_job(job_id, chunk: int, totals: dict[str, int]) -> None:
    while True:
        with transaction.atomic():
            batch_ids = list(Batch.objects.filter(job_id=job_id).values_list("id", flat=True)[:chunk])
            if not batch_ids:
                break
            totals["failures"] += ItemFailure.objects.filter(batch_id__in=batch_ids).delete()[0]
            totals["attempts"] += BatchAttempt.objects.filter(batch_id__in=batch_ids).delete()[0]
            totals["payloads"] += BatchPayload.objects.filter(batch_id__in=batch_ids).delete()[0]
            totals["batches"] += Batch.objects.filter(id__in=batch_ids)._raw_delete(Batch.objects.db)
    with transaction.atomic():
        ItemFailure.objects.filter(job_id=job_id).delete()
        totals["jobs"] += ProcessingJob.objects.filter(id=job_id, completed_at__isnull=False)._raw_delete(
            ProcessingJob.objects.db)
