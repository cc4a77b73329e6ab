"""REST API views (DRF). Thin: parse, authorize, call a service, render."""

from __future__ import annotations

import csv

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, UnsupportedMediaType, ValidationError
from rest_framework.fields import empty
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from jobs import services
from jobs.api import serializers as s
from jobs.api.members import ProjectAccessActions
from jobs.api.streaming import STREAMED, read_submission
from jobs.api.throttling import SharedScopedRateThrottle
from jobs.datatypes import stored_source
from jobs.errors import BodyTooLarge
from jobs.importing.readers import open_records
from jobs.models import JobStatus, ProcessingJob
from jobs.selectors import access, status_cache
from jobs.selectors import core as selectors
from zenith.infra import csv_safety


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class CSVRenderer(BaseRenderer):
    """Lets `?format=csv` select the CSV download (the view streams the body itself)."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, (bytes, str)) else b""


class EchoWriter:
    def write(self, value: str) -> str:
        return value


# Room for the multipart envelope and the form fields around the file.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _resolve_project(request, project_id: str, action: str = access.SUBMIT):
    """The project a body names: unknown and foreign read the same (400), a role too low is a 403."""
    return access.project_for(request.user, project_id, action, in_body=True)


class JsonErrorsMixin:
    """Errors are always JSON, even on a request that asked for a CSV download."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if getattr(getattr(self.request, "accepted_renderer", None), "format", None) == "csv":
            self.request.accepted_renderer = JSONRenderer()
            self.request.accepted_media_type = JSONRenderer.media_type
        return response


@extend_schema(tags=["batch-jobs"])
class BatchJobViewSet(JsonErrorsMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.JobSerializer
    pagination_class = Pagination
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_queryset(self):
        return selectors.visible_jobs(self.request.user)

    def get_object(self) -> ProcessingJob:
        try:
            return super().get_object()
        except (ValueError, ValidationError):
            raise NotFound("Job not found") from None

    def retrieve(self, request, *args, **kwargs):
        """Answered from jobs.selectors.status_cache when this user read the job moments ago."""
        job_id = kwargs[self.lookup_field]
        data = status_cache.fetch(request.user, job_id)
        if data is None:
            data = self.get_serializer(self.get_object()).data
            status_cache.store(request.user, job_id, data)
        return Response(data)

    def get_throttles(self):
        if self.action == "submit":
            self.throttle_scope = "submissions"
            return [SharedScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(parameters=[s.JobListQuerySerializer], responses=s.JobSerializer(many=True))
    def list(self, request):
        query = s.JobListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        jobs = selectors.filter_jobs(self.get_queryset(), **query.validated_data)
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request={"application/json": s.SubmitJobSerializer, "multipart/form-data": s.UploadJobSerializer},
        responses={201: s.SubmittedJobSerializer},
        description="Submit records as JSON (`items`) or upload a file (`file`: CSV, JSON array or JSON lines, "
                    "optionally gzip). Bad records do not fail the request: they become item failures. "
                    "`analysis` and `embedding` jobs may instead read the project's stored transactions: "
                    "JSON without `items` and with `options: {\"source\": \"project\"}`.",
    )
    @action(detail=False, methods=["post"], parser_classes=[JSONParser, MultiPartParser, FormParser])
    def submit(self, request):
        """JSON bodies are streamed (see _submit_json); multipart uploads go through jobs.importing."""
        media_type = (request.content_type or "").split(";")[0].strip().lower()
        if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            # Refused on the declared length, before Django spools a too-large file to disk.
            if _declared_length(request) > settings.ZENITH_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES:
                raise BodyTooLarge(settings.ZENITH_MAX_UPLOAD_BYTES)
            form = s.UploadJobSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            data = form.validated_data
            upload = data["file"]
            with upload.open("rb") as raw:
                job = services.submit_file(
                    project=_resolve_project(request, data["project_id"]), data_type=data["data_type"],
                    raw=raw, name=upload.name, fmt=data.get("format"), priority=data.get("priority"),
                    options=data["options"], submitted_by=request.user, batch_size=data.get("batch_size"),
                    correlation_id=getattr(request, "correlation_id", ""))
        elif media_type in ("", "application/json") or media_type.endswith("+json"):
            # Decided by the header alone: touching request.data/FILES would make DRF parse the body.
            job = self._submit_json(request)
        else:
            raise UnsupportedMediaType(media_type, detail=(
                f"Unsupported media type '{media_type}': send application/json with `items`, "
                f"or multipart/form-data with `file`."))
        body = {"job_id": job.id, "status": job.status, "total_items": job.total_items,
                "total_batches": job.total_batches, "batch_size": job.batch_config.get("size")}
        return Response(s.SubmittedJobSerializer(body).data, status=status.HTTP_201_CREATED)

    def _submit_json(self, request) -> ProcessingJob:
        """Items are streamed to a spool (jobs.api.streaming); the other fields are checked
        like any serializer's."""
        streamed = read_submission(request._request, _declared_length(request))
        try:
            form = s.SubmitFieldsSerializer(data=streamed.fields)
            valid = form.is_valid()
            if "items" not in streamed.fields and valid and stored_source.reads_project(form.validated_data["options"]):
                # No items: the job reads the project's stored transactions (jobs.datatypes.stored_source).
                data = form.validated_data
                return services.submit_project_transactions(
                    project=_resolve_project(request, data["project_id"]), data_type=data["data_type"],
                    priority=data.get("priority"), options=data["options"], submitted_by=request.user,
                    batch_size=data.get("batch_size"), correlation_id=getattr(request, "correlation_id", ""))
            if streamed.fields.get("items") is not STREAMED:
                # Absent, or not an array: the items field says what is wrong with it.
                s.ItemsField().run_validation(streamed.fields.get("items", empty))
            elif streamed.count == 0:
                raise ValidationError({"items": ["No items provided"]})
            if not valid:
                raise ValidationError(form.errors)
            data = form.validated_data
            _, records = open_records(streamed.items, fmt="jsonl")
            return services.submit_items(
                project=_resolve_project(request, data["project_id"]), data_type=data["data_type"],
                items=records, priority=data.get("priority"), options=data["options"],
                submitted_by=request.user, input_format="items", batch_size=data.get("batch_size"),
                correlation_id=getattr(request, "correlation_id", ""))
        finally:
            if streamed.items is not None:
                streamed.items.close()

    @extend_schema(
        request={"multipart/form-data": s.PreviewSerializer},
        responses={200: inline_serializer("PreviewResult", {
            "detected": serializers.DictField(), "mapping": serializers.DictField(allow_null=True),
            "rows": serializers.ListField(child=serializers.DictField())})},
        description="Read the first rows of a file as Zenith would import them (with the detected or given "
                    "mapping) and validate each, without submitting anything.",
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def preview(self, request):
        form = s.PreviewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        upload = data["file"]
        from jobs.services.mappings import preview_upload

        with upload.open("rb") as raw:
            result = preview_upload(_resolve_project(request, data["project_id"]), raw, upload.name,
                                    data["data_type"], fmt=data.get("format"), options=data["options"],
                                    limit=data["limit"])
        return Response(result)

    @extend_schema(request=None, responses={200: inline_serializer("Cancelled", {"status": serializers.CharField()})})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        access.check_job(request.user, job, access.OPERATE)
        job = services.cancel_job(job.id, actor=request.user)
        status_cache.drop(job.id)
        return Response({"status": job.status})

    @extend_schema(request=s.RetrySerializer, responses={200: inline_serializer("Retried", {
        "status": serializers.CharField(), "dead_batches": serializers.IntegerField(),
        "rerun_batches": serializers.IntegerField(), "items": serializers.IntegerField()})})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        form = s.RetrySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = self.get_object()
        access.check_job(request.user, job, access.OPERATE)
        job_id = job.id
        report = services.retry_job(job_id, scope=form.validated_data["scope"], actor=request.user)
        status_cache.drop(job_id)
        return Response({"status": JobStatus.PROCESSING, "dead_batches": report.dead_batches,
                         "rerun_batches": report.rerun_batches, "items": report.items})

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, description="Only batches in this status.")],
        responses=s.BatchSerializer(many=True))
    @action(detail=True, methods=["get"])
    def batches(self, request, pk=None):
        batches = selectors.job_batches(self.get_object())
        if request.query_params.get("status"):
            batches = batches.filter(status=request.query_params["status"])
        page = self.paginate_queryset(batches)
        return self.get_paginated_response(s.BatchSerializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("kind", OpenApiTypes.STR, enum=["invalid", "error"]),
                    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"],
                                     description="csv downloads every failure as a file.")],
        responses={200: s.ItemFailureSerializer(many=True), (200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer])
    def failures(self, request, pk=None):
        job = self.get_object()
        failures = selectors.job_failures(job).select_related("batch")
        kind = request.query_params.get("kind")
        if kind:
            failures = failures.filter(kind=kind)
        if request.accepted_renderer.format == "csv":
            return _failures_csv(job, failures)
        page = self.paginate_queryset(failures)
        return self.get_paginated_response(s.ItemFailureSerializer(page, many=True).data)


def _failures_csv(job: ProcessingJob, failures) -> StreamingHttpResponse:
    writer = csv.writer(EchoWriter())
    header = ["item_index", "item_key", "kind", "error_code", "field", "message", "batch_number"]

    def rows():
        yield writer.writerow(header)
        for failure in failures.values_list("item_index", "item_key", "kind", "error_code", "field", "message",
                                            "batch__number").iterator(chunk_size=2000):
            # item_key and message carry uploaded text: no cell may open as a formula.
            yield writer.writerow(csv_safety.row(failure))

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="zenith-job-{job.id}-failures.csv"'
    return response


@extend_schema(tags=["projects"])
class ProjectViewSet(ProjectAccessActions, mixins.ListModelMixin, mixins.CreateModelMixin,
                     mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ProjectSerializer
    pagination_class = Pagination

    def get_queryset(self):
        return selectors.visible_projects(self.request.user).prefetch_related("memberships__user")

    def get_throttles(self):
        if self.action == "create":
            self.throttle_scope = "projects"
            return [SharedScopedRateThrottle()]
        return super().get_throttles()

    def perform_create(self, serializer):
        from jobs.services.projects import create_project

        created = create_project(name=serializer.validated_data.get("name", ""), creator=self.request.user,
                                 id_hint=serializer.validated_data.get("id", ""))
        serializer.instance = self.get_queryset().get(pk=created.pk)

    @extend_schema(methods=["put"], request=inline_serializer("BaseCurrency", {
        "base_currency": serializers.CharField(allow_blank=True)}), responses=s.ProjectSerializer)
    @action(detail=True, methods=["put"], url_path="base-currency", pagination_class=None)
    def base_currency(self, request, pk=None):
        """Sets the project's base currency (issue 19): the currency of records whose file names none."""
        project = self.get_object()
        access.require(request.user, project, access.SAVE_MAPPINGS)
        from jobs.services.mappings import set_base_currency

        set_base_currency(project, str(request.data.get("base_currency") or ""), request.user)
        return Response(s.ProjectSerializer(self.get_queryset().get(pk=project.pk)).data)

    @extend_schema(methods=["get"], responses=s.ImportMappingSerializer(many=True))
    @extend_schema(methods=["post"], request=s.ImportMappingSerializer, responses=s.ImportMappingSerializer)
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def mappings(self, request, pk=None):
        """The project's saved column mappings; POST saves one (by name: saving again replaces it)."""
        project = self.get_object()
        if request.method == "GET":
            return Response(s.ImportMappingSerializer(project.import_mappings.all(), many=True).data)
        access.require(request.user, project, access.SAVE_MAPPINGS)
        from jobs.services.mappings import save_mapping

        form = s.ImportMappingSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        saved = save_mapping(project, form.validated_data["name"], form.validated_data["mapping"], request.user,
                             form.validated_data["description"])
        return Response(s.ImportMappingSerializer(saved).data)
