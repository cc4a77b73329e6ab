"""Operator endpoints: dead-lettered batches (with every failed attempt) and circuit breakers."""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from jobs import services
from jobs.api.views import Pagination
from jobs.datatypes.registry import get_data_type, known_data_types
from jobs.engine import breaker
from jobs.models import Batch, BatchAttempt
from jobs.selectors import access, status_cache
from jobs.selectors import core as selectors
from zenith.infra.redis import get_redis


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = BatchAttempt
        fields = ["number", "outcome", "worker_name", "started_at", "finished_at", "error", "traceback"]


class DeadLetterSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(read_only=True)
    data_type = serializers.CharField(source="job.data_type", read_only=True)
    project_id = serializers.CharField(source="job.project_id", read_only=True)
    attempts_log = AttemptSerializer(source="failed_attempts", many=True, read_only=True)

    class Meta:
        model = Batch
        fields = ["id", "job_id", "project_id", "data_type", "number", "item_count", "attempts", "last_error",
                  "finished_at", "attempts_log"]


@extend_schema(tags=["operations"])
class DeadLetterViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Batches that failed every retry. Re-queue one here, or all of a job's with
    `POST /api/v1/batch-jobs/{id}/retry {"scope": "dead"}`."""

    serializer_class = DeadLetterSerializer
    pagination_class = Pagination

    @extend_schema(parameters=[OpenApiParameter("job_id", OpenApiTypes.UUID, description="Only this job's.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        batches = selectors.dead_letters(self.request.user).prefetch_related("failed_attempts")
        job_id = self.request.query_params.get("job_id")
        if not job_id:
            return batches
        try:
            return batches.filter(job_id=uuid.UUID(job_id))
        except ValueError:
            raise ValidationError({"job_id": "must be a job id (a UUID)"}) from None

    @extend_schema(request=None, parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
                   responses={200: inline_serializer("Requeued", {
        "status": serializers.CharField(), "batches": serializers.IntegerField(),
        "items": serializers.IntegerField()})})
    @action(detail=True, methods=["post"])
    def requeue(self, request, pk=None):
        batches = selectors.dead_letters(request.user).select_related("job__project")
        batch = batches.filter(pk=pk).first() if str(pk).isdigit() else None
        if batch is None:
            raise NotFound("Dead-lettered batch not found")
        access.check_job(request.user, batch.job, access.OPERATE)
        report = services.requeue_dead_batches(batch.job_id, [batch.id], actor=request.user)
        status_cache.drop(batch.job_id)
        return Response({"status": "queued", "batches": report.dead_batches, "items": report.items})


class MayForceBreakers(BasePermission):
    """The explicit `jobs.force_breaker` permission (jobs.selectors.access), not staff status alone."""

    message = "Forcing a circuit breaker needs the jobs.force_breaker permission."

    def has_permission(self, request, view) -> bool:
        return access.is_operator(request.user, access.FORCE_BREAKER)


class BreakerForceSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["open", "closed", "auto"])


class BreakerStatusSerializer(serializers.Serializer):
    data_type = serializers.CharField()
    state = serializers.ChoiceField(choices=["closed", "open", "half_open"])
    forced = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)
    opened_at = serializers.FloatField(allow_null=True)
    reopens_at = serializers.FloatField(allow_null=True)


@extend_schema(tags=["operations"])
class BreakerViewSet(viewsets.ViewSet):
    """Circuit breaker per data type; staff may force one open or closed, or back to auto."""

    lookup_field = "data_type"
    lookup_value_regex = "[A-Za-z0-9_.-]+"

    def get_permissions(self):
        return [MayForceBreakers()] if self.action == "force" else [IsAuthenticated()]

    @extend_schema(responses={200: BreakerStatusSerializer(many=True)})
    def list(self, request):
        redis = get_redis()
        return Response([breaker.status(redis, name) for name in known_data_types()])

    @extend_schema(request=BreakerForceSerializer, responses={200: BreakerStatusSerializer})
    @action(detail=True, methods=["post"])
    def force(self, request, data_type=None):
        spec = get_data_type(data_type)
        form = BreakerForceSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(services.force_breaker(spec.name, form.validated_data["state"], actor=request.user))
