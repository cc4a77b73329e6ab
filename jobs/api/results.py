"""`GET /api/v1/batch-jobs/{id}/results`: a job's processing results (findings, matches,
entities, embeddings or stored transactions, by data type), filterable and paginated, or
the whole filtered set as CSV with `?format=csv`. Embedding jobs also answer
`?similar_to=<id>` (or `?similar_text=...`) with the `k` most similar texts.

`GET /api/v1/projects/{id}/transactions/{transaction id}/similar` answers `find similar` for
one of a project's stored transactions, from the project's latest embedding job over them
(`options.source = "project"`), or the one named by `?job=`.

Membership rule as everywhere: a job of a project the user is not a member of is a 404.
"""

from __future__ import annotations

import csv
import uuid

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from jobs.api.views import CSVRenderer, EchoWriter, JsonErrorsMixin, Pagination
from jobs.errors import ResultFilterError
from jobs.models import ProcessingJob
from jobs.selectors import core as selectors
from jobs.selectors import results

_FILTER_PARAMETERS = []
_seen: set[str] = set()
for _source in results.SOURCES.values():
    for _filter in _source.filters:
        if _filter.name not in _seen:
            _seen.add(_filter.name)
            _FILTER_PARAMETERS.append(OpenApiParameter(
                _filter.name, OpenApiTypes.STR, description=f"{_filter.help} ({_source.kind})",
                enum=list(_filter.choices) or None))


@extend_schema(tags=["batch-jobs"])
class JobResultsView(JsonErrorsMixin, GenericAPIView):
    pagination_class = Pagination
    renderer_classes = [JSONRenderer, CSVRenderer]

    def get_job(self, pk: str) -> ProcessingJob:
        job = selectors.visible_job(self.request.user, pk)
        if job is None:
            raise NotFound("Job not found")
        return job

    @extend_schema(
        operation_id="batch_jobs_results",
        parameters=[
            *_FILTER_PARAMETERS,
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"],
                             description="csv downloads every (filtered) result row as a file."),
            OpenApiParameter("similar_to", OpenApiTypes.STR, description="Embedding jobs: the id of a text; "
                             "answers its k most similar texts."),
            OpenApiParameter("similar_text", OpenApiTypes.STR, description="Embedding jobs: a new text; answers "
                             "the k most similar texts of the job."),
            OpenApiParameter("k", OpenApiTypes.INT, description="How many similar texts (default 10, at most 100)."),
            OpenApiParameter("limit", OpenApiTypes.INT), OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR},
        description="The job's results by data type: findings (analysis), matches (reconciliation), entities, "
                    "embeddings, or the transactions a transaction job stored. Paginated with limit/offset; "
                    "`kind` and `columns` say what the rows are.",
    )
    def get(self, request, pk=None):
        job = self.get_job(pk)
        source = results.source_for(job)
        params = request.query_params
        if source is None:
            return Response({"kind": None, "columns": [], "count": 0, "next": None, "previous": None,
                             "results": [], "detail": f"Data type '{job.data_type}' has no results view."})
        if source.kind == "embeddings" and (params.get("similar_to") or params.get("similar_text")):
            return self._similar(job, params)
        try:
            rows = source.rows(job, params)
        except ResultFilterError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        if request.accepted_renderer.format == "csv":
            return _csv(job, source, rows)
        page = self.paginate_queryset(rows)
        response = self.get_paginated_response([results.plain_row(row) for row in page])
        response.data["kind"] = source.kind
        response.data["columns"] = list(source.columns)
        return response

    def _similar(self, job: ProcessingJob, params) -> Response:
        k = _k(params)
        try:
            similar = results.find_similar(job, external_id=params.get("similar_to") or None,
                                           text=params.get("similar_text"), k=k)
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        return Response({"kind": "similar", "query": params.get("similar_to") or params.get("similar_text"),
                         "count": len(similar), "results": similar})


def _k(params) -> int:
    try:
        k = int(params.get("k", 10))
    except ValueError:
        raise ValidationError({"detail": "k must be a whole number"}) from None
    if not 1 <= k <= 100:
        raise ValidationError({"detail": "k must be from 1 to 100"})
    return k


@extend_schema(tags=["projects"])
class TransactionSimilarView(JsonErrorsMixin, GenericAPIView):
    @extend_schema(
        operation_id="projects_transactions_similar",
        parameters=[
            OpenApiParameter("k", OpenApiTypes.INT, description="How many similar transactions (default 10, "
                             "at most 100)."),
            OpenApiParameter("job", OpenApiTypes.UUID, description="The embedding job to use (default: the "
                             "project's latest finished one with options.source=project)."),
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="The stored transactions whose descriptions are most like this one's (cosine similarity of "
                    "the embedding job's vectors), best first, with their ledger fields. 409 when the project "
                    "has no embedding job over its stored transactions yet.",
    )
    def get(self, request, project_id=None, external_id=None):
        if selectors.project_for_user(request.user, project_id) is None:
            raise NotFound("Project not found")
        k = _k(request.query_params)
        job_id = request.query_params.get("job") or None
        if job_id is not None:
            try:
                job_id = str(uuid.UUID(job_id))
            except ValueError:
                raise ValidationError({"detail": "job must be a job id (UUID)"}) from None
        try:
            body = results.similar_transactions(project_id, external_id, k=k, job_id=job_id)
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        return Response({"kind": "similar_transactions", **body})


def _csv(job: ProcessingJob, source: results.ResultSource, rows) -> StreamingHttpResponse:
    writer = csv.writer(EchoWriter())
    response = StreamingHttpResponse((writer.writerow(row) for row in results.csv_rows(source, rows)),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="zenith-job-{job.id}-{source.kind}.csv"'
    return response
