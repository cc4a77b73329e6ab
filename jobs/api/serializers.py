"""Request and response shapes of the REST API. Field names follow the original design's contract (docs/design.md)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils.text import slugify
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import PRIORITIES, Batch, ItemFailure, JobStatus, ProcessingJob, Project, ProjectRole
from jobs.selectors.core import job_progress


@extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": True},
                      "maxItems": 1_000_000})
class ItemsField(serializers.Field):
    """A list of JSON objects, checked without copying them (a ListField of DictFields would
    rebuild every one of up to a million records)."""

    default_error_messages = {"not_a_list": "items must be a JSON array of objects"}

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list")
        if not data:
            raise serializers.ValidationError("No items provided")
        if len(data) > settings.ZENITH_MAX_ITEMS_PER_JOB:
            from jobs.errors import TooManyItems

            raise TooManyItems(settings.ZENITH_MAX_ITEMS_PER_JOB)
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise serializers.ValidationError(f"item {index} must be a JSON object, not {type(item).__name__}")
        return data

    def to_representation(self, value):
        return value


class BoundedJSONField(serializers.JSONField):
    """A JSON field within ZENITH_MAX_JSON_DEPTH: DRF's json.loads of a form field recurses, and
    a mapping nested a hundred thousand deep was a RecursionError, a 500."""

    def to_internal_value(self, data):
        from jobs.importing.limits import Budget, check_depth

        budget = Budget()
        try:
            value = super().to_internal_value(data)
        except RecursionError:
            raise budget.too_deep() from None
        check_depth(value, budget)
        return value


class SubmitFieldsSerializer(serializers.Serializer):
    """A JSON submission's fields other than its items (those are streamed)."""

    project_id = serializers.CharField(max_length=64)
    data_type = serializers.CharField(max_length=64)
    priority = serializers.IntegerField(min_value=PRIORITIES[0], max_value=PRIORITIES[-1], required=False,
                                        help_text="1 (lowest) to 10 (highest); ZENITH_DEFAULT_PRIORITY when not given.")
    options = serializers.DictField(required=False, default=dict)
    batch_size = serializers.IntegerField(min_value=1, max_value=10_000, required=False,
                                          help_text="Override the optimizer's batch size.")


class SubmitJobSerializer(SubmitFieldsSerializer):
    items = ItemsField(help_text="The records, each a JSON object (at most 1,000,000).")


class UploadJobSerializer(serializers.Serializer):
    project_id = serializers.CharField(max_length=64)
    data_type = serializers.CharField(max_length=64)
    priority = serializers.IntegerField(min_value=PRIORITIES[0], max_value=PRIORITIES[-1], required=False,
                                        help_text="1 (lowest) to 10 (highest); ZENITH_DEFAULT_PRIORITY when not given.")
    file = serializers.FileField(allow_empty_file=True,
                                 help_text="CSV, JSON array or JSON lines; optionally gzip-compressed.")
    format = serializers.ChoiceField(choices=["csv", "json", "jsonl"], required=False,
                                     help_text="Override detection from the file name.")
    options = BoundedJSONField(required=False, default=dict, help_text="A JSON object of data-type options.")
    batch_size = serializers.IntegerField(min_value=1, max_value=10_000, required=False,
                                          help_text="Override the optimizer's batch size.")
    mapping = BoundedJSONField(required=False, help_text="A column mapping (see jobs.importing.mapping).")
    mapping_name = serializers.SlugField(required=False, help_text="A mapping saved in the project.")

    def validate(self, attrs):
        options = dict(attrs.get("options") or {})
        if attrs.get("mapping") is not None:
            options["mapping"] = attrs.pop("mapping")
        if attrs.get("mapping_name"):
            options["mapping_name"] = attrs.pop("mapping_name")
        attrs["options"] = options
        return attrs

    def validate_file(self, file):
        if file.size > settings.ZENITH_MAX_UPLOAD_BYTES:
            raise serializers.ValidationError(
                f"The file is larger than {settings.ZENITH_MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
        return file

    def validate_options(self, options):
        if not isinstance(options, dict):
            raise serializers.ValidationError("options must be a JSON object")
        return options


class SubmittedJobSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.CharField()
    total_items = serializers.IntegerField()
    total_batches = serializers.IntegerField()
    batch_size = serializers.IntegerField()


_PLAIN_FIELDS = (
    "data_type", "status", "priority", "items_processed", "items_failed", "items_skipped", "total_items",
    "total_batches", "batches_completed", "batches_failed", "batches_cancelled", "error_message", "retry_count",
    "input_name", "input_format", "input_checksum", "import_details", "options", "batch_config", "summary",
    "correlation_id",
)


def _iso(moment) -> str | None:
    """As DRF renders datetimes: ISO 8601, UTC as Z."""
    if moment is None:
        return None
    text = moment.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class JobSerializer(serializers.ModelSerializer):
    project_id = serializers.CharField(read_only=True)
    progress_percent = serializers.SerializerMethodField()
    estimated_completion_time = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    throughput_per_second = serializers.SerializerMethodField()
    batch_size = serializers.SerializerMethodField()

    class Meta:
        model = ProcessingJob
        fields = [
            "id", "project_id", "data_type", "status", "priority", "progress_percent", "items_processed",
            "items_failed", "items_skipped", "total_items", "total_batches", "batches_completed",
            "batches_failed", "batches_cancelled", "batch_size", "created_at", "started_at", "completed_at",
            "estimated_completion_time", "eta_seconds", "throughput_per_second", "error_message", "retry_count",
            "input_name", "input_format", "input_checksum", "import_details", "options", "batch_config", "summary",
            "correlation_id",
        ]
        read_only_fields = fields

    def _progress(self, job):
        cache = self.context.setdefault("_progress", {})
        if job.pk not in cache:
            cache[job.pk] = job_progress(job)
        return cache[job.pk]

    def to_representation(self, job) -> dict:
        """Built by hand: the status endpoint is polled every ~2 s by every open job page, and
        DRF's per-request field construction was most of its CPU time (docs/performance.md)."""
        progress = self._progress(job)
        data = {name: getattr(job, name) for name in _PLAIN_FIELDS}
        data.update(
            id=str(job.id), project_id=job.project_id, progress_percent=progress.percent,
            created_at=_iso(job.created_at), started_at=_iso(job.started_at), completed_at=_iso(job.completed_at),
            estimated_completion_time=_iso(progress.estimated_completion_time), eta_seconds=progress.eta_seconds,
            throughput_per_second=progress.throughput_per_second, batch_size=(job.batch_config or {}).get("size"),
        )
        return data

    @extend_schema_field(serializers.FloatField())
    def get_progress_percent(self, job) -> float:
        return self._progress(job).percent

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_estimated_completion_time(self, job):
        eta = self._progress(job).estimated_completion_time
        return serializers.DateTimeField().to_representation(eta) if eta else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_eta_seconds(self, job):
        return self._progress(job).eta_seconds

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_throughput_per_second(self, job):
        return self._progress(job).throughput_per_second

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_batch_size(self, job):
        return (job.batch_config or {}).get("size")


class JobListQuerySerializer(serializers.Serializer):
    project_id = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(choices=JobStatus.values, required=False)
    data_type = serializers.CharField(required=False, max_length=64)


class BatchSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Batch
        fields = ["id", "number", "status", "start_index", "item_count", "attempts", "processed_count",
                  "failed_count", "skipped_count", "queued_at", "started_at", "finished_at", "duration_seconds",
                  "next_attempt_at", "worker_name", "last_error", "rerun_scope"]
        read_only_fields = fields


class ItemFailureSerializer(serializers.ModelSerializer):
    batch_number = serializers.IntegerField(source="batch.number", read_only=True)

    class Meta:
        model = ItemFailure
        fields = ["item_index", "item_key", "kind", "error_code", "field", "message", "batch_number"]
        read_only_fields = fields


class RetrySerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["failures", "errors", "dead"], default="failures",
                                    help_text="failures: dead batches and every failed item; errors: dead "
                                              "batches and items whose processing raised; dead: dead batches only.")


class ProjectSerializer(serializers.ModelSerializer):
    id = serializers.SlugField(max_length=57, required=False, help_text=(
        "The start of the new project's id; a random suffix is always added, so the id returned never "
        "says whether another project used the same start. Default: from the name."))
    members = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "members", "roles", "role", "created_at", "base_currency"]
        read_only_fields = ["members", "roles", "role", "created_at", "base_currency"]

    def _memberships(self, project) -> list:
        # Prefetched by the viewset (memberships__user); sorted here, not by another query.
        return sorted(project.memberships.all(), key=lambda membership: membership.user.username)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_members(self, project) -> list[str]:
        return [membership.user.username for membership in self._memberships(project)]

    @extend_schema_field(serializers.DictField(child=serializers.ChoiceField(ProjectRole.choices)))
    def get_roles(self, project) -> dict[str, str]:
        return {membership.user.username: membership.role for membership in self._memberships(project)}

    @extend_schema_field(serializers.ChoiceField(ProjectRole.choices, allow_null=True))
    def get_role(self, project) -> str | None:
        """The caller's own role (null for an operator who is not a member)."""
        user = getattr(self.context.get("request"), "user", None)
        return next((m.role for m in project.memberships.all() if user is not None and m.user_id == user.pk), None)

    def validate(self, attrs):
        if not slugify(attrs.get("id") or attrs.get("name", "")):
            raise serializers.ValidationError({"id": "give an id, or a name that has letters or digits"})
        return attrs


class PreviewSerializer(UploadJobSerializer):
    batch_size = None
    priority = None
    limit = serializers.IntegerField(min_value=1, max_value=200, default=20)


class ImportMappingSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    mapping = BoundedJSONField()
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_mapping(self, value):
        from jobs.errors import InputError
        from jobs.importing import Mapping

        try:
            Mapping.parse(value)
        except InputError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value
