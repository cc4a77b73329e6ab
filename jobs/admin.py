"""The operator's control plane. Actions call the same services as the API and pages, so they
leave the same audit entries. What a staff user may do here comes from permissions: Django's
model permissions for the pages, and for the actions `jobs.operate_all_projects` (cancel,
retry, re-queue) and `jobs.force_breaker` (jobs.selectors.access); staff status alone only
lets a user in."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from redis.exceptions import RedisError

from jobs import services
from jobs.errors import InputError, JobStateError, ZenithError, sentence
from jobs.importing import Mapping
from jobs.models import (
    AuditEntry,
    Batch,
    BatchAttempt,
    BatchStatus,
    EntityName,
    Finding,
    FindingReview,
    ImportMapping,
    ItemFailure,
    ProcessingJob,
    Project,
    ProjectMembership,
    ProjectRole,
    StatementMatch,
    Transaction,
)
from jobs.selectors import access
from jobs.selectors import findings as review_selectors
from jobs.services import mappings as mapping_services
from jobs.services import projects as project_services

logger = logging.getLogger(__name__)

WORKER_OWNED = ("status", "attempts", "claim_token", "rq_job_id", "worker_name", "queued_at", "started_at",
                "heartbeat_at", "finished_at", "next_attempt_at", "not_before", "processed_count", "failed_count",
                "skipped_count", "last_error", "stats", "rerun_scope")


class OperatorActions:
    """Admin actions gated by the operator permissions, not by staff status."""

    def has_operate_permission(self, request) -> bool:
        return access.is_operator(request.user, access.OPERATE_ALL_PROJECTS)

    def has_force_breaker_permission(self, request) -> bool:
        return access.is_operator(request.user, access.FORCE_BREAKER)


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [form.cleaned_data for form in self.forms
                if form.cleaned_data and form.cleaned_data.get("user") and not form.cleaned_data.get("DELETE")]
        if kept and not any(data.get("role") == ProjectRole.OWNER for data in kept):
            raise forms.ValidationError("A project with members needs at least one owner.")


class MembershipInline(admin.TabularInline):
    """Saved through jobs.services.projects (ProjectAdmin.save_formset), so each change is
    audited and the last owner stays."""

    model = ProjectMembership
    formset = MembershipFormSet
    fields = ("user", "role", "added_at")
    readonly_fields = ("added_at",)
    autocomplete_fields = ("user",)
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_by", "created_at")
    search_fields = ("id", "name")
    inlines = [MembershipInline]

    def get_readonly_fields(self, request, obj=None):
        # Editing the id would save a copy under the new id, not rename the project.
        return ("id", "created_by", "created_at") if obj else ()

    def save_formset(self, request, form, formset, change):
        if formset.model is not ProjectMembership:
            return super().save_formset(request, form, formset, change)
        project = form.instance
        additions, promotions, demotions, removals = [], [], [], []
        for row in formset.forms:
            data = row.cleaned_data
            if not data or not data.get("user"):
                continue
            before = row.instance if row.instance.pk else None
            if data.get("DELETE"):
                if before is not None:
                    removals.append(ProjectMembership.objects.select_related("user").get(pk=before.pk))
                continue
            if before is None:
                additions.append((data["user"].username, data["role"]))
            elif "user" in row.changed_data:
                removals.append(ProjectMembership.objects.select_related("user").get(pk=before.pk))
                additions.append((data["user"].username, data["role"]))
            elif "role" in row.changed_data:
                (promotions if data["role"] == ProjectRole.OWNER else demotions).append(
                    (data["user"].username, data["role"]))
        # What formset.save() would have recorded, for the admin's own change history.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        # Owners first, removals last: a swap of owners never passes through "no owner".
        try:
            for username, role in additions:
                formset.new_objects.append(project_services.add_member(
                    project=project, username=username, role=role, actor=request.user))
            for username, role in promotions + demotions:
                formset.changed_objects.append((project_services.change_role(
                    project=project, username=username, role=role, actor=request.user), ["role"]))
            for removed in removals:
                project_services.remove_member(project=project, username=removed.user.username, actor=request.user)
                formset.deleted_objects.append(removed)
        except ZenithError as exc:
            self.message_user(request, f"Members not all changed: {sentence(exc)}", messages.ERROR)


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
class ProcessingJobAdmin(OperatorActions, admin.ModelAdmin):
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
        # A native <progress>: style attributes are refused by the Content-Security-Policy.
        return format_html('<progress value="{}" max="100"></progress> {}%', job.progress_percent,
                           job.progress_percent)

    @admin.display(description="all batches")
    def batch_list(self, job: ProcessingJob) -> str:
        url = reverse("admin:jobs_batch_changelist") + f"?job__id__exact={job.id}"
        return format_html('<a href="{}">{} batches</a>', url, job.total_batches)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel selected jobs", permissions=["operate"])
    def cancel_selected(self, request, queryset: QuerySet[ProcessingJob]) -> None:
        done, refused = 0, []
        for job in queryset:
            try:
                services.cancel_job(job.id, actor=request.user)
                done += 1
            except JobStateError as exc:
                refused.append(f"{str(job.id)[:8]}: {sentence(exc)}")
        self.message_user(request, f"Cancelled {done} job(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not cancelled: " + "; ".join(refused), messages.ERROR)

    @admin.action(description="Retry failed batches", permissions=["operate"])
    def retry_failed(self, request, queryset: QuerySet[ProcessingJob]) -> None:
        for job in queryset:
            try:
                report = services.retry_job(job.id, actor=request.user)
                self.message_user(request, f"{str(job.id)[:8]}: retrying {report.dead_batches} dead batch(es), "
                                           f"{report.rerun_batches} batch(es) with failed items.", messages.SUCCESS)
            except (JobStateError, ValueError) as exc:
                self.message_user(request, f"{str(job.id)[:8]}: {exc}", messages.ERROR)

    def _force(self, request, queryset, state: str) -> None:
        data_types = sorted(set(queryset.values_list("data_type", flat=True)))
        done = []
        for data_type in data_types:
            try:
                services.force_breaker(data_type, state, actor=request.user)
                done.append(data_type)
            except (ValueError, RedisError) as exc:  # e.g. Redis down: say so instead of a 500
                logger.warning("admin could not force the breaker of %s", data_type, exc_info=True)
                self.message_user(request, f"Circuit breaker of {data_type} not changed: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"Circuit breaker of {', '.join(done)} set to {state}.", messages.SUCCESS)

    @admin.action(description="Force the circuit breaker of the selected jobs' data types open",
                  permissions=["force_breaker"])
    def open_breaker(self, request, queryset) -> None:
        self._force(request, queryset, "open")

    @admin.action(description="Force the circuit breaker of the selected jobs' data types closed",
                  permissions=["force_breaker"])
    def close_breaker(self, request, queryset) -> None:
        self._force(request, queryset, "closed")

    @admin.action(description="Return the circuit breaker of the selected jobs' data types to automatic",
                  permissions=["force_breaker"])
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
class BatchAdmin(OperatorActions, admin.ModelAdmin):
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

    @admin.action(description="Re-queue selected dead-lettered batches", permissions=["operate"])
    def requeue_dead(self, request, queryset: QuerySet[Batch]) -> None:
        dead = queryset.filter(status=BatchStatus.DEAD)
        by_job: dict = {}
        for batch in dead:
            by_job.setdefault(batch.job_id, []).append(batch.id)
        requeued = 0
        for job_id, batch_ids in by_job.items():
            try:
                requeued += services.requeue_dead_batches(job_id, batch_ids, actor=request.user).dead_batches
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


class HistoryAdmin(admin.ModelAdmin):
    """A history the services write (reviews, the audit log): browsed here, never added to,
    edited or deleted."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
    readonly_fields = ("review_history",)

    @admin.display(description="review history")
    def review_history(self, finding: Finding) -> str:
        """The finding's reviews (jobs.models.reviews: by project, rule and external id), newest first."""
        reviews = review_selectors.review_history(finding)
        if not reviews:
            return "Not reviewed."
        url = reverse("admin:jobs_findingreview_changelist") + "?" + urlencode(
            {"project__id__exact": reviews[0].project_id, "rule__exact": finding.rule, "q": finding.external_id})
        items = format_html_join("", "<li>{} {}: {} ({})</li>", (
            (f"{r.at:%Y-%m-%d %H:%M}", r.reviewer_name, r.get_state_display(), r.note or "no note") for r in reviews))
        return format_html('<ol>{}</ol><a href="{}">All {} in the review log</a>', items, url, len(reviews))


@admin.register(FindingReview)
class FindingReviewAdmin(HistoryAdmin):
    """Read-only: reviews are written by jobs.services.reviews (with their audit entry) and
    never edited or deleted; the latest review of a finding is its current state."""

    list_display = ("at", "project", "rule", "external_id", "state", "reviewer_name", "note")
    list_filter = ("state", "rule", "project")
    search_fields = ("external_id", "reviewer_name", "note")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    readonly_fields = [f.name for f in FindingReview._meta.fields]
    list_select_related = ("project",)


@admin.register(StatementMatch)
class StatementMatchAdmin(ReadOnlyResultAdmin):
    list_display = ("job", "line_id", "outcome", "stage", "matched_external_id", "amount")
    list_filter = ("outcome", "stage")
    search_fields = ("job__id", "line_id")


@admin.register(EntityName)
class EntityNameAdmin(ReadOnlyResultAdmin):
    list_display = ("job", "name", "normalized_name", "entity_key", "group_key", "group_size")
    search_fields = ("name", "normalized_name", "entity_key")

    def get_queryset(self, request):
        # The group lives on the job's row for the distinct name (jobs.models.domain).
        return super().get_queryset(request).annotate(group_key=F("group__group_key"),
                                                      group_size=F("group__group_size"))

    @admin.display(description="group key", ordering="group_key")
    def group_key(self, name: EntityName) -> str:
        return name.group_key

    @admin.display(description="group size", ordering="group_size")
    def group_size(self, name: EntityName) -> int:
        return name.group_size


class ImportMappingForm(forms.ModelForm):
    class Meta:
        model = ImportMapping
        fields = "__all__"

    def clean_mapping(self):
        # What the service would refuse, as a field error rather than a failed save.
        value = self.cleaned_data.get("mapping")
        if not isinstance(value, dict):
            raise forms.ValidationError("The mapping must be a JSON object.")
        try:
            Mapping.parse(value)
        except InputError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value


@admin.register(ImportMapping)
class ImportMappingAdmin(admin.ModelAdmin):
    """Saved and deleted through jobs.services.mappings, so the audit log keeps every version."""

    form = ImportMappingForm
    list_display = ("project", "name", "description", "updated_at")
    list_filter = ("project",)
    search_fields = ("name", "description")

    def get_readonly_fields(self, request, obj=None):
        # A mapping is replaced under its name, never renamed or moved.
        return ("project", "name", "updated_at", "created_by") if obj else ("updated_at", "created_by")

    def save_model(self, request, obj, form, change):
        saved = mapping_services.save_mapping(obj.project, obj.name, obj.mapping, request.user, obj.description)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        mapping_services.delete_mapping(project=obj.project, name=obj.name, actor=request.user)

    def delete_queryset(self, request, queryset):
        for mapping in queryset.select_related("project"):
            self.delete_model(request, mapping)


@admin.register(AuditEntry)
class AuditEntryAdmin(HistoryAdmin):
    """Read-only: entries are written by the services and never edited or deleted here."""

    list_display = ("at", "actor_name", "project_key", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor_name", "project_key", "target")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
