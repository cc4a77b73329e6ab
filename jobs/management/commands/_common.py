"""Helpers shared by Zenith's manage.py commands."""

from __future__ import annotations

import json

from django.core.management.base import CommandError

from jobs.models import ProcessingJob
from jobs.selectors.core import job_progress


def get_job(identifier: str) -> ProcessingJob:
    """A job by its full id or a unique prefix of it (as `git` takes commits)."""
    identifier = identifier.strip().lower()
    if len(identifier) < 4:
        raise CommandError("give at least 4 characters of the job id")
    try:
        return ProcessingJob.objects.get(id=identifier)
    except (ProcessingJob.DoesNotExist, ValueError, Exception):
        pass
    matches = [job for job in ProcessingJob.objects.only("id") if str(job.id).startswith(identifier)][:2]
    if not matches:
        raise CommandError(f"no job with id {identifier}")
    if len(matches) > 1:
        raise CommandError(f"job id prefix {identifier} is ambiguous; give more characters")
    return ProcessingJob.objects.get(id=matches[0].id)


def job_summary(job: ProcessingJob) -> dict:
    progress = job_progress(job)
    return {
        "id": str(job.id), "project_id": job.project_id, "data_type": job.data_type, "status": job.status,
        "priority": job.priority, "progress_percent": progress.percent, "total_items": job.total_items,
        "items_processed": job.items_processed, "items_failed": job.items_failed,
        "items_skipped": job.items_skipped, "total_batches": job.total_batches,
        "batches_completed": job.batches_completed, "batches_failed": job.batches_failed,
        "batches_cancelled": job.batches_cancelled, "batch_size": job.batch_config.get("size"),
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "completed_at": job.completed_at.isoformat() if job.completed_at else None,
        "throughput_per_second": progress.throughput_per_second, "eta_seconds": progress.eta_seconds,
        "error_message": job.error_message, "summary": job.summary,
    }


def dumps(data: dict) -> str:
    return json.dumps(data, indent=2, default=str)
