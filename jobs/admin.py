"""The operator's control plane. Actions call the same services as the API and pages."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html
from redis.exceptions import RedisError

from jobs import services
from jobs.errors import JobStateError
from jobs.models import (
    Batch,
    BatchAttempt,
    BatchStatus,
    EntityName,
    Finding,
    ImportMapping,
    ItemFailure,
    ProcessingJob,
    Project,
    StatementMatch,
    Transaction,
)

logger = logging.getLogger(__name__)

WORKER_OWNED = ("status", "attempts", "claim_token", "rq_job_id", "worker_name", "queued_at", "started_at",
                "heartbeat_at", "finished_at", "next_attempt_at", "not_before", "processed_count", "failed_count",
                "skipped_count", "last_error", "stats", "rerun_scope")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_by", "created_at")
    search_fields = ("id", "name")
    filter_horizontal = ("members",)


class ProblemBatchInline(admin.TabularInline):
    """Batches that did not simply succeed (a 1M-item job has 2,000 batches; the rest are in
    the batch list, linked from the job)."""

    model = Batch
    verbose_name_plural = "Batches that need attention (dead-lettered, retrying, running, cancelled)"
    fields = ("number", "status", "attempts", "item_count", "processed_count", "failed_count", "worker_name",
              "last_error")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(status__in=[BatchStatus.SUCCEEDED, BatchStatus.PENDING])


@admin.register(ProcessingJob)
class ProcessingJobAdmin(admin.ModelAdmin):
    list_display = ("short_id", "project", "data_type", "status", "progress", "total_items", "items_processed",
                    "items_failed", "items_skipped", "priority", "created_at")
    list_filter = ("status", "data_type", "project", "priority")
    search_fields = ("id", "input_name", "project__id", "project__name", "correlation_id")
    date_hierarchy = "created_at"
    actions = ["cancel_selected", "retry_failed", "open_breaker", "close_breaker", "auto_breaker"]
    inlines = [ProblemBatchInline]
    readonly_fields = [f.name for f in ProcessingJob._meta.fields] + ["progress", "batch_list"]
    list_select_related = ("project",)

    @admin.display(description="job", ordering="id")
    def short_id(self, job: ProcessingJob) -> str:
        return str(job.id)[:8]

    @admin.display(description="progress")
    def progress(self, job: ProcessingJob) -> str:
        return format_html(
            '<div style="width:110px;background:#e5e7eb;border-radius:4px;display:inline-block">'
            '<div style="width:{}%;background:{};height:10px;border-radius:4px"></div></div> {}%',
            job.progress_percent, "#1a7f37" if job.completed_at else "#3b5bdb", job.progress_percent)

    @admin.display(description="all batches")
    def batch_list(self, job: ProcessingJob) -> str:
        url = reverse("admin:jobs_batch_changelist") + f"?job__id__exact={job.id}"
        return format_html('<a href="{}">{} batches</a>', url, job.total_batches)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel_selected(self, request, queryset: QuerySet[ProcessingJob]) -> None:
        done, refused = 0, []
        for job in queryset:
            try:
                services.cancel_job(job.id)
                done += 1
            except JobStateError as exc:
                refused.append(f"{str(job.id)[:8]}: {exc}")
        self.message_user(request, f"Cancelled {done} job(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not cancelled: " + "; ".join(refused), messages.ERROR)

    @admin.action(description="Retry failed batches")
    def retry_failed(self, request, queryset: QuerySet[ProcessingJob]) -> None:
        for job in queryset:
            try:
                report = services.retry_job(job.id)
                self.message_user(request, f"{str(job.id)[:8]}: retrying {report.dead_batches} dead batch(es), "
                                           f"{report.rerun_batches} batch(es) with failed items.", messages.SUCCESS)
            except (JobStateError, ValueError) as exc:
                self.message_user(request, f"{str(job.id)[:8]}: {exc}", messages.ERROR)

    def _force(self, request, queryset, state: str) -> None:
        data_types = sorted(set(queryset.values_list("data_type", flat=True)))
        done = []
        for data_type in data_types:
            try:
                services.force_breaker(data_type, state)
                done.append(data_type)
            except (ValueError, RedisError) as exc:  # e.g. Redis down: say so instead of a 500
                logger.warning("admin could not force the breaker of %s", data_type, exc_info=True)
                self.message_user(request, f"Circuit breaker of {data_type} not changed: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"Circuit breaker of {', '.join(done)} set to {state}.", messages.SUCCESS)

    @admin.action(description="Force the circuit breaker of the selected jobs' data types open")
    def open_breaker(self, request, queryset) -> None:
        self._force(request, queryset, "open")

    @admin.action(description="Force the circuit breaker of the selected jobs' data types closed")
    def close_breaker(self, request, queryset) -> None:
        self._force(request, queryset, "closed")

    @admin.action(description="Return the circuit breaker of the selected jobs' data types to automatic")
    def auto_breaker(self, request, queryset) -> None:
        self._force(request, queryset, "auto")


class AttemptInline(admin.TabularInline):
    model = BatchAttempt
    fields = ("number", "outcome", "worker_name", "started_at", "finished_at", "error", "traceback")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("id", "job_link", "number", "status", "attempts", "item_count", "processed_count",
                    "failed_count", "worker_name", "finished_at")
    list_filter = ("status", "job__data_type")
    search_fields = ("job__id", "rq_job_id", "worker_name")
    readonly_fields = ("job", "number", "start_index", "item_count", *WORKER_OWNED)
    inlines = [AttemptInline]
    actions = ["requeue_dead"]
    list_select_related = ("job",)

    @admin.display(description="job")
    def job_link(self, batch: Batch) -> str:
        url = reverse("admin:jobs_processingjob_change", args=[batch.job_id])
        return format_html('<a href="{}">{}</a>', url, str(batch.job_id)[:8])

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Re-queue selected dead-lettered batches")
    def requeue_dead(self, request, queryset: QuerySet[Batch]) -> None:
        dead = queryset.filter(status=BatchStatus.DEAD)
        by_job: dict = {}
        for batch in dead:
            by_job.setdefault(batch.job_id, []).append(batch.id)
        requeued = 0
        for job_id, batch_ids in by_job.items():
            try:
                requeued += services.requeue_dead_batches(job_id, batch_ids).dead_batches
            except (JobStateError, ValueError) as exc:
                # e.g. the job was cancelled: its dead batches stay dead, the others go on
                self.message_user(request, f"Job {str(job_id)[:8]}: {exc}", messages.ERROR)
        skipped = queryset.exclude(status=BatchStatus.DEAD).count()
        if requeued or not by_job:
            self.message_user(request, f"Re-queued {requeued} dead-lettered batch(es)."
                              + (f" {skipped} selected batch(es) were not dead-lettered." if skipped else ""),
                              messages.SUCCESS if requeued else messages.WARNING)


@admin.register(ItemFailure)
class ItemFailureAdmin(admin.ModelAdmin):
    list_display = ("job", "item_index", "item_key", "kind", "error_code", "message")
    list_filter = ("kind", "error_code")
    search_fields = ("job__id", "item_key", "message")
    readonly_fields = [f.name for f in ItemFailure._meta.fields]
    list_select_related = ("job",)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = ("external_id", "project", "date", "amount", "currency", "counterparty", "account")
    list_filter = ("currency", "project")
    search_fields = ("external_id", "counterparty", "description", "reference")
    date_hierarchy = "date"


class ReadOnlyResultAdmin(admin.ModelAdmin):
    """Results are written by workers; the admin browses them."""

    list_select_related = ("job",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Finding)
class FindingAdmin(ReadOnlyResultAdmin):
    list_display = ("job", "rule", "severity", "external_id", "amount", "currency", "explanation")
    list_filter = ("rule", "severity")
    search_fields = ("job__id", "external_id", "explanation")


@admin.register(StatementMatch)
class StatementMatchAdmin(ReadOnlyResultAdmin):
    list_display = ("job", "line_id", "outcome", "stage", "matched_external_id", "amount")
    list_filter = ("outcome", "stage")
    search_fields = ("job__id", "line_id")


@admin.register(EntityName)
class EntityNameAdmin(ReadOnlyResultAdmin):
    list_display = ("job", "name", "normalized_name", "entity_key", "group_key", "group_size")
    search_fields = ("name", "normalized_name", "entity_key")


@admin.register(ImportMapping)
class ImportMappingAdmin(admin.ModelAdmin):
    list_display = ("project", "name", "description", "updated_at")
    list_filter = ("project",)
    search_fields = ("name", "description")
