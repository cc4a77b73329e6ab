"""Read-side queries: what the API, pages, admin and commands show. No writes here.

Everything a status view needs comes from the job row itself (O(1) in the job's size): the
counters are kept exact by the services, so nothing is aggregated per request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Max, Min, QuerySet, Sum
from django.utils import timezone

from jobs.models import AuditEntry, Batch, BatchStatus, ItemFailure, JobStatus, ProcessingJob, Project
from jobs.selectors.access import NEEDED_ROLE, RANK, SUBMIT, is_operator


@dataclasses.dataclass(frozen=True)
class Progress:
    percent: float
    items_done: int
    throughput_per_second: float | None
    eta_seconds: float | None
    estimated_completion_time: dt.datetime | None
    elapsed_seconds: float | None


def job_progress(job: ProcessingJob, now: dt.datetime | None = None) -> Progress:
    """Throughput and ETA from observed progress: items finished per second
    since the first batch started, and the remaining items at that rate."""
    now = now or timezone.now()
    done = job.items_done
    end = job.completed_at or now
    elapsed = (end - job.started_at).total_seconds() if job.started_at else None
    throughput = done / elapsed if elapsed and elapsed > 0 and done else None
    eta_seconds = eta = None
    if job.status == JobStatus.PROCESSING and not job.completed_at and throughput:
        eta_seconds = max(0.0, (job.total_items - done) / throughput)
        eta = now + dt.timedelta(seconds=eta_seconds)
    return Progress(job.progress_percent, done, round(throughput, 2) if throughput else None,
                    round(eta_seconds, 1) if eta_seconds is not None else None, eta,
                    round(elapsed, 3) if elapsed is not None else None)


def visible_projects(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    """Projects the user is a member of, in any role (every project for an operator:
    jobs.selectors.access.is_operator)."""
    if not user.is_authenticated:
        return Project.objects.none()
    if is_operator(user):
        return Project.objects.all()
    return Project.objects.filter(members=user)


def visible_jobs(user: AbstractBaseUser | AnonymousUser) -> QuerySet[ProcessingJob]:
    """Jobs of projects the user is a member of (all for an operator), newest first."""
    jobs = ProcessingJob.objects.select_related("project").order_by("-created_at")
    if not user.is_authenticated:
        return jobs.none()
    if is_operator(user):
        return jobs
    return jobs.filter(project__members=user)


def visible_job(user: AbstractBaseUser | AnonymousUser, job_id: Any) -> ProcessingJob | None:
    """The job if the user may see it; None for a foreign, unknown or malformed id alike."""
    try:
        return visible_jobs(user).filter(id=job_id).first()
    except (ValueError, ValidationError):
        return None


def submittable_projects(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    """Projects the user may submit to (analyst or owner): the upload page's choices."""
    if not user.is_authenticated:
        return Project.objects.none()
    roles = [role for role, rank in RANK.items() if rank >= RANK[NEEDED_ROLE[SUBMIT]]]
    return Project.objects.filter(memberships__user=user, memberships__role__in=roles)


def audit_entries(project: Project) -> QuerySet[AuditEntry]:
    """The project's audit log, newest first."""
    return AuditEntry.objects.filter(project=project).select_related("actor").order_by("-at", "-id")


def filter_jobs(jobs: QuerySet[ProcessingJob], *, project_id: str | None = None, status: str | None = None,
                data_type: str | None = None) -> QuerySet[ProcessingJob]:
    if project_id:
        jobs = jobs.filter(project_id=project_id)
    if status:
        jobs = jobs.filter(status=status)
    if data_type:
        jobs = jobs.filter(data_type=data_type)
    return jobs


def job_batches(job: ProcessingJob) -> QuerySet[Batch]:
    return Batch.objects.filter(job=job).defer("stats").order_by("number")


def job_failures(job: ProcessingJob) -> QuerySet[ItemFailure]:
    return ItemFailure.objects.filter(job=job).order_by("item_index")


def batch_status_counts(job: ProcessingJob) -> dict[str, int]:
    counts = {status: 0 for status in BatchStatus.values}
    for row in Batch.objects.filter(job=job).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def throughput_series(job: ProcessingJob, buckets: int = 40) -> list[tuple[float, float]]:
    """(seconds since start, items/s) per time bucket, from batch finish times; for charts."""
    batches = Batch.objects.filter(job=job, finished_at__isnull=False, status=BatchStatus.SUCCEEDED)
    span = batches.aggregate(first=Min("started_at"), last=Max("finished_at"))
    if not span["first"] or not span["last"]:
        return []
    start = job.started_at or span["first"]
    total = max(1e-3, (span["last"] - start).total_seconds())
    width = total / buckets
    items = [0.0] * buckets
    for finished, processed, failed in batches.values_list("finished_at", "processed_count", "failed_count"):
        index = min(buckets - 1, max(0, int((finished - start).total_seconds() / width)))
        items[index] += processed + failed
    return [(round((i + 1) * width, 3), round(count / width, 2)) for i, count in enumerate(items)]


def dead_letters(user: AbstractBaseUser | AnonymousUser | None = None) -> QuerySet[Batch]:
    batches = Batch.objects.filter(status=BatchStatus.DEAD).select_related("job", "job__project").order_by(
        "-finished_at")
    if user is not None and not is_operator(user):
        batches = batches.filter(job__project__members=user)
    return batches


def project_for_user(user: AbstractBaseUser | AnonymousUser, project_id: str) -> Project | None:
    """The project if it exists and the user may use it; None otherwise (the two cases look
    the same to the caller, so nobody learns which projects exist)."""
    return visible_projects(user).filter(id=project_id).first()


def backlog_totals() -> dict[str, int]:
    """Work not yet finished, from the job counters (O(unfinished jobs), not O(batches))."""
    totals = ProcessingJob.objects.filter(completed_at__isnull=True).aggregate(
        batches=Sum(F("total_batches") - F("batches_completed") - F("batches_failed") - F("batches_cancelled")),
        items=Sum(F("total_items") - F("items_processed") - F("items_failed") - F("items_skipped")),
    )
    return {"batches": totals["batches"] or 0, "items": totals["items"] or 0}
