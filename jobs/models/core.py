"""The job-tracking models. PostgreSQL is the source of truth for every count shown anywhere.

Invariants the services keep (and tests check):
- A job's counters always equal the sum over its batches (both move in one transaction).
- Once a job is finalized (`completed_at` set), processed + failed + skipped == total_items.
- A batch's payload is stored once at submission; RQ messages carry only the batch id.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class Project(models.Model):
    id = models.SlugField(primary_key=True, max_length=64)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="zenith_projects", blank=True,
                                     through="ProjectMembership", through_fields=("project", "user"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The currency of the project's books, used for a record whose file names none (a third of
    # real bank exports imply their home currency); such rows are stored as inferred.
    base_currency = models.CharField(max_length=3, blank=True, default="", db_default="")

    class Meta:
        ordering = ["id"]
        # Operator powers are explicit permissions, granted to a user or a group; being staff
        # only lets a user into the admin (jobs.selectors.access.is_operator).
        permissions = [
            ("operate_all_projects", "Can read every project and cancel, retry or re-queue any job"),
            ("force_breaker", "Can force a data type's circuit breaker open, closed or back to automatic"),
        ]

    def __str__(self) -> str:
        return self.name or self.id


class ProjectRole(models.TextChoices):
    """What a member may do in a project (jobs.selectors.access maps actions to roles)."""

    OWNER = "owner", "Owner"  # everything an analyst may, plus members and the audit log
    ANALYST = "analyst", "Analyst"  # submits, cancels, retries, saves mappings
    VIEWER = "viewer", "Viewer"  # reads only


class ProjectMembership(models.Model):
    """A user's role in a project. A member added without a role (`project.members.add(user)`
    in scripts and fixtures) is an analyst: what every member could do before roles existed,
    except managing members. The API, pages and admin always name the role."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="zenith_memberships")
    # Database defaults as well: the release before roles, still running during a rolling
    # upgrade, inserts members without these columns.
    role = models.CharField(max_length=16, choices=ProjectRole.choices, default=ProjectRole.ANALYST,
                            db_default=ProjectRole.ANALYST)
    added_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        # The table Django made for the plain many-to-many, kept: the previous release reads it.
        db_table = "jobs_project_members"
        ordering = ["project", "user"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_project_user")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project_id}"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
# Job priorities, lowest to highest (queue bands: jobs.engine.dispatch); the default is
# settings.ZENITH_DEFAULT_PRIORITY.
PRIORITIES = range(1, 11)


class ProcessingJob(models.Model):
    """One submitted dataset (the original design's job, docs/design.md), plus what a mature tool needs around it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    data_type = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    priority = models.PositiveSmallIntegerField(default=5)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    input_name = models.CharField(max_length=255, blank=True, default="")
    input_format = models.CharField(max_length=16, blank=True, default="")
    # SHA-256 of the file as submitted (what sha256sum prints); of the canonical JSON for items.
    input_checksum = models.CharField(max_length=64, blank=True, default="")
    # How the file was read: format, encoding, delimiter, header row, column mapping, date and
    # number conventions (what was detected, or given). Shown with the job; nothing silent.
    import_details = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, default="")

    total_items = models.PositiveIntegerField(default=0)
    total_batches = models.PositiveIntegerField(default=0)
    batch_config = models.JSONField(default=dict, blank=True)

    # Counters: each moves in the same transaction as the batch row that explains it.
    batches_completed = models.PositiveIntegerField(default=0)
    batches_failed = models.PositiveIntegerField(default=0)  # dead-lettered
    batches_cancelled = models.PositiveIntegerField(default=0)
    items_processed = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    items_skipped = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)  # set by the finalizer only
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    error_message = models.TextField(blank=True, default="")
    retry_count = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="job_status_created"),
            models.Index(fields=["project", "-created_at"], name="job_project_created"),
            models.Index(fields=["completed_at"], name="job_completed"),
        ]

    def __str__(self) -> str:
        return f"{self.data_type} job {self.id}"

    @property
    def is_finalized(self) -> bool:
        return self.completed_at is not None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @property
    def items_done(self) -> int:
        return self.items_processed + self.items_failed + self.items_skipped

    @property
    def progress_percent(self) -> float:
        """Share of items that reached an outcome.

        The original design divides only `items_processed` by the total, which never reaches 100 %
        once any item fails; failed and skipped items are finished too.
        """
        if self.total_items == 0:
            return 100.0 if self.is_finalized else 0.0
        return round(min(100.0, self.items_done * 100.0 / self.total_items), 2)

    @property
    def success_rate(self) -> float:
        attempted = self.items_processed + self.items_failed
        return 0.0 if attempted == 0 else round(self.items_processed * 100.0 / attempted, 2)


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # stored, not yet handed to RQ (outside the job's window)
    QUEUED = "queued", "Queued"  # an RQ message exists (or is about to, on commit)
    RUNNING = "running", "Running"  # claimed by a worker; heartbeat_at moves
    RETRYING = "retrying", "Retrying"  # waiting for next_attempt_at after a system error
    SUCCEEDED = "succeeded", "Succeeded"
    DEAD = "dead", "Dead-lettered"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_BATCH_STATUSES = (BatchStatus.SUCCEEDED, BatchStatus.DEAD, BatchStatus.CANCELLED)
ACTIVE_BATCH_STATUSES = (BatchStatus.QUEUED, BatchStatus.RUNNING)


class RerunScope(models.TextChoices):
    ALL = "", "All items"
    ERRORS = "errors", "Items that raised"
    FAILURES = "failures", "All failed items"


class Batch(models.Model):
    # No index of its own: batch_job_number and batch_job_status lead with the job.
    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="batches", db_index=False)
    number = models.PositiveIntegerField()  # 1-based, as in the original design
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING)
    start_index = models.PositiveIntegerField()  # index of the first item in the job's input
    item_count = models.PositiveIntegerField()

    attempts = models.PositiveIntegerField(default=0)
    rerun_scope = models.CharField(max_length=16, choices=RerunScope.choices, blank=True, default="")
    claim_token = models.UUIDField(null=True, blank=True)
    rq_job_id = models.CharField(max_length=64, blank=True, default="")
    worker_name = models.CharField(max_length=128, blank=True, default="")

    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)

    processed_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="batch_job_number")]
        indexes = [
            models.Index(fields=["job", "status"], name="batch_job_status"),
            models.Index(fields=["status", "heartbeat_at"], name="batch_status_heartbeat"),
            # The window's pick (jobs.sql.pick_window) takes a job's first pending batches by
            # number: without this it read and sorted every pending batch at each commit.
            models.Index(fields=["job", "number"], condition=models.Q(status="pending"), name="batch_job_pending"),
        ]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.number} of job {self.job_id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_BATCH_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class BatchPayload(models.Model):
    """The claim check: a batch's items, stored once and compactly at submission."""

    batch = models.OneToOneField(Batch, on_delete=models.CASCADE, primary_key=True, related_name="payload")
    codec = models.CharField(max_length=16)
    data = models.BinaryField()


class AttemptOutcome(models.TextChoices):
    ERROR = "error", "Raised an exception"
    TIMEOUT = "timeout", "Exceeded its time limit"
    LOST = "lost", "Worker lost (no heartbeat)"
    ITEM_ERRORS = "item_errors", "Some items raised"
    INTERRUPTED = "interrupted", "Worker shut down"


class BatchAttempt(models.Model):
    """One failed run of a batch, with what went wrong (the dead-letter history)."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="failed_attempts")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    worker_name = models.CharField(max_length=128, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["batch", "number"]


class FailureKind(models.TextChoices):
    INVALID = "invalid", "Rejected by validation"  # the data's fault
    ERROR = "error", "Processing raised"  # the system's fault: retried, feeds the breaker


class ItemFailure(models.Model):
    job = models.ForeignKey(ProcessingJob, on_delete=models.CASCADE, related_name="failures")
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="failures")
    item_index = models.PositiveIntegerField()  # 0-based index in the submitted input
    item_key = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=16, choices=FailureKind.choices, default=FailureKind.INVALID)
    error_code = models.CharField(max_length=64)
    field = models.CharField(max_length=64, blank=True, default="")
    message = models.TextField()

    class Meta:
        ordering = ["job", "item_index"]
        constraints = [models.UniqueConstraint(fields=["batch", "item_index"], name="failure_batch_item")]
        indexes = [models.Index(fields=["job", "item_index"], name="failure_job_item")]
