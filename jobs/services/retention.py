"""Retention: finished jobs older than ZENITH_RETENTION_DAYS are deleted with their batches,
stored payloads, attempts, item failures and the job's own analysis rows (findings, matches,
embeddings...), at most ZENITH_CLEANUP_CHUNK rows per DELETE statement and transaction, so a
cleanup of millions of rows never holds long locks or builds one huge statement. Result rows
that belong to the project (e.g. transactions) are kept; they only lose the link to the
deleted job."""

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
    chunk = max(1, chunk or settings.ZENITH_CLEANUP_CHUNK)
    cutoff = timezone.now() - dt.timedelta(days=days)
    totals = {"jobs": 0, "batches": 0, "payloads": 0, "failures": 0, "attempts": 0, "other": 0, "unlinked": 0}
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
    """Deletes one job's rows, leaves first: what hangs off its batches (item failures,
    attempts, payloads), then the job's other dependent rows, then the batches, then the job.
    Every step takes at most `chunk` rows per statement, so no step depends on how many rows
    one batch has."""
    _delete_in_chunks(ItemFailure.objects.filter(job_id=job_id), chunk, totals, "failures")
    _delete_in_chunks(BatchAttempt.objects.filter(batch__job_id=job_id), chunk, totals, "attempts")
    _delete_in_chunks(BatchPayload.objects.filter(batch__job_id=job_id), chunk, totals, "payloads")
    for relation in ProcessingJob._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)):
            continue
        model, field = relation.related_model, relation.field.name
        if model in (Batch, ItemFailure):
            continue
        rows = model._base_manager.filter(**{field: job_id})
        if relation.on_delete is models.SET_NULL:
            _unlink_in_chunks(rows, field, chunk, totals)
        else:
            _delete_in_chunks(rows, chunk, totals, "other")
    _delete_in_chunks(Batch.objects.filter(job_id=job_id), chunk, totals, "batches")
    with transaction.atomic():
        totals["jobs"] += ProcessingJob.objects.filter(id=job_id, completed_at__isnull=False).delete()[0]


def _in_chunks(rows: models.QuerySet, chunk: int, apply) -> None:
    """Calls `apply` on at most `chunk` of `rows` per transaction until none is left (each
    call must take the rows it gets out of `rows`)."""
    manager = rows.model._base_manager
    while True:
        with transaction.atomic():
            ids = list(rows.values_list("pk", flat=True)[:chunk])
            if not ids:
                return
            apply(manager.filter(pk__in=ids))


def _delete_in_chunks(rows: models.QuerySet, chunk: int, totals: dict[str, int], key: str) -> None:
    label = rows.model._meta.label

    def delete(some: models.QuerySet) -> None:
        totals[key] += some.delete()[1].get(label, 0)

    _in_chunks(rows, chunk, delete)


def _unlink_in_chunks(rows: models.QuerySet, field: str, chunk: int, totals: dict[str, int]) -> None:
    def unlink(some: models.QuerySet) -> None:
        totals["unlinked"] += some.update(**{field: None})

    _in_chunks(rows, chunk, unlink)
