"""The monitor pages (seed section 5, server-rendered): dashboard, jobs, job detail, upload.

Thin views: they read through selectors, act through services, and share the API's
membership rules (a job of another project is a 404) and its error messages.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from monitoring import selectors as system

from . import selectors, services
from .api.errors import explain
from .api.serializers import JobSerializer
from .charts import throughput_svg
from .datatypes.registry import UnknownDataType, known_data_types
from .forms import UploadForm
from .models import JobStatus, ProcessingJob
from .readers import InputError
from .results import results_preview
from .services import JobStateError, SubmissionError
from .services.imports import preview_upload, save_mapping


def _job_or_404(request: HttpRequest, job_id) -> ProcessingJob:
    job = selectors.visible_jobs(request.user).filter(id=job_id).first()
    if job is None:
        raise Http404("Job not found")
    return job


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    active = selectors.visible_jobs(request.user).filter(completed_at__isnull=True)[:50]
    return render(request, "jobs/dashboard.html", {
        "active_jobs": active,
        "queues": system.queue_depths(),
        "backlog": selectors.backlog_totals(),
        "workers": system.workers(),
        "breakers": system.breakers_and_throttles(),
        "resources": system.resources(),
        "alerts": system.recent_alerts(),
    })


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    filters = {key: request.GET.get(key) or None for key in ("project_id", "status", "data_type")}
    jobs = selectors.filter_jobs(selectors.visible_jobs(request.user), **filters)
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return render(request, "jobs/job_list.html", {
        "page": page, "filters": filters, "query": query, "statuses": JobStatus.choices,
        "data_types": known_data_types(), "projects": selectors.visible_projects(request.user),
    })


@login_required
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    batches = Paginator(selectors.job_batches(job), 100).get_page(request.GET.get("batches"))
    failures = selectors.job_failures(job).select_related("batch")[:100]
    return render(request, "jobs/job_detail.html", {
        "job": job, "progress": selectors.job_progress(job), "batches": batches, "failures": failures,
        "failure_count": job.items_failed, "batch_counts": selectors.batch_status_counts(job),
        "chart": throughput_svg(selectors.throughput_series(job)), "results": results_preview(job),
        "can_cancel": not job.is_terminal, "can_retry": job.is_finalized and job.status != JobStatus.CANCELLED
        and (job.items_failed or job.batches_failed),
    })


@login_required
def active_jobs(request: HttpRequest) -> JsonResponse:
    """Progress of the user's unfinished jobs, for the dashboard's live bars."""
    jobs = selectors.visible_jobs(request.user).filter(completed_at__isnull=True)[:50]
    return JsonResponse({"jobs": [{"id": str(job.id), "status": job.status, "progress_percent": job.progress_percent}
                                  for job in jobs]})


@login_required
def job_progress(request: HttpRequest, job_id) -> JsonResponse:
    """The small JSON the job page polls every ~2 s (same fields as the API)."""
    job = _job_or_404(request, job_id)
    data = JobSerializer(job).data
    data["is_finalized"] = job.is_finalized
    data["batch_counts"] = selectors.batch_status_counts(job)
    return JsonResponse(data)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    try:
        job = services.cancel_job(job.id)
        messages.success(request, "Job cancelled: no new batch will start; running batches stop within seconds.")
    except JobStateError as exc:
        messages.error(request, str(exc))
    return redirect("job-detail", job_id=job.id)


@login_required
@require_POST
def job_retry(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    scope = request.POST.get("scope", "failures")
    try:
        report = services.retry_job(job.id, scope=scope)
        messages.success(request, f"Retrying {report.dead_batches} dead-lettered batch(es) and "
                                  f"{report.rerun_batches} batch(es) with failed items ({report.items} items).")
    except (JobStateError, ValueError) as exc:
        messages.error(request, str(exc))
    return redirect("job-detail", job_id=job.id)


@login_required
def job_new(request: HttpRequest) -> HttpResponse:
    """Upload a file; "Preview" shows how Zenith will read it (detected mapping, first rows,
    each validated) before anything is submitted, and the mapping can be corrected there."""
    form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
    context: dict = {"form": form}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        project, options = form.cleaned_data["project"], form.cleaned_data["options"]
        try:
            if form.cleaned_data["save_mapping_as"] and options.get("mapping"):
                save_mapping(project, form.cleaned_data["save_mapping_as"], options["mapping"], request.user)
            with upload.open("rb") as raw:
                if request.POST.get("action") == "preview":
                    context["preview"] = preview_upload(project, raw, upload.name, form.cleaned_data["data_type"],
                                                        options=options)
                    return render(request, "jobs/job_new.html", context)
                job = services.submit_file(
                    project=project, data_type=form.cleaned_data["data_type"], raw=raw,
                    name=upload.name, priority=form.cleaned_data["priority"], submitted_by=request.user,
                    options=options, correlation_id=getattr(request, "correlation_id", ""))
        except (SubmissionError, InputError, UnknownDataType) as exc:
            http_status, _, message, _ = explain(exc)
            form.add_error(None, message)
            return render(request, "jobs/job_new.html", context, status=http_status)
        messages.success(request, f"Submitted {job.total_items:,} items in {job.total_batches:,} batches.")
        return redirect("job-detail", job_id=job.id)
    status = 400 if request.method == "POST" else 200
    return render(request, "jobs/job_new.html", context, status=status)

