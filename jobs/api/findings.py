"""Reviews of a finding in the API:

- `GET  /api/v1/batch-jobs/{id}/findings/{rule}/{external id}/reviews`: the finding's review
  history, newest first, and its current state (any member);
- `POST` the same, `{"state", "note", "seen_review"}`: review it (analysts and owners; 201).

A finding is named as the results API lists it, by rule and transaction external id. Reviews
belong to the logical finding (project, rule, external id), so the history holds reviews made
on earlier runs of the analysis too (docs/design.md, "Findings and reviews"). Findings are
filtered by review state in the results API (`?review_state=`).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from jobs.api.views import JsonErrorsMixin
from jobs.models import Finding, FindingReview, ProcessingJob, ReviewState
from jobs.selectors import access, findings
from jobs.selectors import core as selectors
from jobs.selectors.results import source_for
from jobs.services.reviews import review_finding


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer_name", read_only=True)
    job_id = serializers.UUIDField(read_only=True, allow_null=True,
                                   help_text="The job whose finding the reviewer was looking at.")

    class Meta:
        model = FindingReview
        fields = ["id", "rule", "external_id", "state", "note", "reviewer", "at", "job_id"]
        read_only_fields = fields


class ReviewHistorySerializer(serializers.Serializer):
    rule = serializers.CharField()
    external_id = serializers.CharField()
    state = serializers.ChoiceField(choices=findings.REVIEW_FILTERS,
                                    help_text="The latest review's state, or unreviewed.")
    count = serializers.IntegerField()
    results = ReviewSerializer(many=True)


class ReviewRequestSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ReviewState.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=findings.NOTE_MAX_CHARS,
                                 trim_whitespace=True)
    seen_review = serializers.IntegerField(
        required=False, min_value=0,
        help_text="The id of the latest review you were shown (0: none). When someone has reviewed the finding "
                  "since, nothing is saved and the answer is 409. Omitted, the review simply becomes the latest.")


@extend_schema(tags=["batch-jobs"])
class FindingReviewsView(JsonErrorsMixin, GenericAPIView):
    serializer_class = ReviewSerializer
    pagination_class = None

    def _finding(self, pk: str, rule: str, external_id: str) -> tuple[ProcessingJob, Finding]:
        job = selectors.visible_job(self.request.user, pk)
        if job is None:
            raise NotFound("Job not found")
        source = source_for(job)
        if source is None or source.kind != "findings":
            raise NotFound("This job has no findings.")
        return job, findings.finding_by_key(job, rule, external_id)

    @extend_schema(operation_id="batch_jobs_findings_reviews_list", responses=ReviewHistorySerializer,
                   description="Every review of the finding (in any run of the analysis over the project's data), "
                               "newest first, and its current state.")
    def get(self, request, pk=None, rule=None, external_id=None):
        job, finding = self._finding(pk, rule, external_id)
        history = findings.review_history(finding, job.project_id)
        return Response({"rule": finding.rule, "external_id": finding.external_id,
                         "state": history[0].state if history else findings.UNREVIEWED, "count": len(history),
                         "results": ReviewSerializer(history, many=True).data})

    @extend_schema(operation_id="batch_jobs_findings_reviews_create", request=ReviewRequestSerializer,
                   responses={201: ReviewSerializer},
                   description="Reviews the finding: confirmed, dismissed or follow_up, with a note (analysts and "
                               "owners). A new review never replaces an earlier one: the history keeps both.")
    def post(self, request, pk=None, rule=None, external_id=None):
        job, finding = self._finding(pk, rule, external_id)
        access.check_job(request.user, job, access.REVIEW)
        form = ReviewRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        review = review_finding(finding=finding, state=form.validated_data["state"],
                                note=form.validated_data["note"], actor=request.user,
                                seen_review=form.validated_data.get("seen_review"))
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)
