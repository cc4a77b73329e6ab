"""Retention: finished jobs older than ZENITH_RETENTION_DAYS are deleted with their batches,
stored payloads, attempts and item failures, a bounded chunk per transaction so a cleanup of
millions of rows never holds long locks. Result rows (e.g. transactions) belong to the
project and are kept; they only lose the link to the deleted job."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from jobs.models import Batch, BatchAttempt, BatchPayload, ItemFailure, ProcessingJob

logger = logging.getLogger(__name__)


def cleanup_old_jobs(retention_days: int | None = None, chunk: int | None = None) -> dict[str, int]:
    days = settings.ZENITH_RETENTION_DAYS if retention_days is None else retention_days
    chunk = chunk or settings.ZENITH_CLEANUP_CHUNK
    cutoff = timezone.now() - dt.timedelta(days=days)
    totals = {"jobs": 0, "batches": 0, "payloads": 0, "failures": 0, "attempts": 0}
    old_jobs = (ProcessingJob.objects.filter(completed_at__isnull=False, completed_at__lt=cutoff)
                .order_by("completed_at"))
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
    """Deletes one job's rows a chunk per transaction: what hangs off the job is deleted
    (batches with their payloads, attempts and failures), what only points at it (result
    rows) is unlinked."""
    relations = [field for field in ProcessingJob._meta.get_fields(include_hidden=True)
                 if field.auto_created and not field.concrete and (field.one_to_many or field.one_to_one)]
    for relation in relations:
        model, field = relation.related_model, relation.field.name
        rows = model._base_manager.filter(**{field: job_id})
        while True:
            with transaction.atomic():
                ids = list(rows.values_list("pk", flat=True)[:chunk])
                if not ids:
                    break
                if relation.on_delete is models.SET_NULL:
                    model._base_manager.filter(pk__in=ids).update(**{field: None})
                    continue
                if model is Batch:
                    totals["payloads"] += BatchPayload.objects.filter(batch_id__in=ids).delete()[0]
                    totals["attempts"] += BatchAttempt.objects.filter(batch_id__in=ids).delete()[0]
                    totals["failures"] += ItemFailure.objects.filter(batch_id__in=ids).delete()[0]
                    totals["batches"] += Batch.objects.filter(id__in=ids).delete()[0]
                else:
                    model._base_manager.filter(pk__in=ids).delete()
    with transaction.atomic():
        totals["jobs"] += ProcessingJob.objects.filter(id=job_id, completed_at__isnull=False).delete()[0]
