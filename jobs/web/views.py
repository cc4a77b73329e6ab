"""The monitor pages (server-rendered): dashboard, jobs, job detail, upload.

Thin views: they read through selectors, act through services, and share the API's
membership rules (a job of another project is a 404) and its error messages.
"""

from __future__ import annotations

import json
import logging
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from jobs import services
from jobs.api.serializers import JobSerializer
from jobs.datatypes.registry import known_data_types
from jobs.errors import JobStateError, NotAllowed, ZenithError, describe
from jobs.models import JobStatus, ProcessingJob
from jobs.selectors import access, system
from jobs.selectors import core as selectors
from jobs.selectors.results import results_preview
from jobs.services.mappings import preview_upload, save_mapping
from jobs.web import staged_uploads
from jobs.web.charts import throughput_svg
from jobs.web.forms import UploadForm, editable_mapping
from jobs.web.readable import import_reading, preview_table
from jobs.web.results_pages import job_page_context

logger = logging.getLogger(__name__)


def _job_or_404(request: HttpRequest, job_id, action: str = access.READ) -> ProcessingJob:
    """The job if the user sees it (404 otherwise, as for one that does not exist), and may do
    `action` on it (403 otherwise, naming the role needed)."""
    job = selectors.visible_job(request.user, job_id)
    if job is None:
        raise Http404("Job not found")
    if action != access.READ:
        try:
            access.check_job(request.user, job, action)
        except NotAllowed as exc:
            raise PermissionDenied(exc.message) from None
    return job


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    active = selectors.visible_jobs(request.user).filter(completed_at__isnull=True)[:50]
    return render(request, "jobs/dashboard.html", {
        "active_jobs": active,
        "queues": system.queue_depths(),
        "backlog": selectors.backlog_totals(),
        "workers": system.workers(request.user),
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
        **_actions(job, request.user), **job_page_context(job),
    })


def _actions(job: ProcessingJob, user) -> dict[str, bool]:
    """Which buttons the job page offers; the page and its poll decide alike. A viewer gets none."""
    if not access.may(user, job.project_id, access.OPERATE):
        return {"can_cancel": False, "can_retry": False}
    return {"can_cancel": not job.is_terminal,
            "can_retry": bool(job.is_finalized and job.status != JobStatus.CANCELLED
                              and (job.items_failed or job.batches_failed))}


def _status_html(status: str) -> str:
    # The icon + text badge from the template the pages use, so polled rows match them.
    return render_to_string("jobs/_status.html", {"status": status})


MAX_POLLED_JOBS = 50


@login_required
def active_jobs(request: HttpRequest) -> JsonResponse:
    """Progress of the user's unfinished jobs, for the dashboard's live bars, plus the jobs
    named in `?ids=` (the rows already on the page) whatever their state: a job that finishes
    leaves the unfinished set, and its row must still show how it ended."""
    visible = selectors.visible_jobs(request.user)
    jobs = list(visible.filter(completed_at__isnull=True)[:MAX_POLLED_JOBS])
    wanted = []
    for value in request.GET.get("ids", "").split(",")[:MAX_POLLED_JOBS]:
        try:
            wanted.append(uuid.UUID(value.strip()))
        except ValueError:
            continue  # not a job id: nothing to show for it
    shown = {job.id for job in jobs}
    jobs += [job for job in visible.filter(id__in=wanted) if job.id not in shown]
    return JsonResponse({"jobs": [{
        "id": str(job.id), "status": job.status, "status_html": _status_html(job.status),
        "progress_percent": job.progress_percent, "is_finalized": job.is_finalized,
    } for job in jobs]})


@login_required
def job_progress(request: HttpRequest, job_id) -> JsonResponse:
    """The small JSON the job page polls every ~2 s (same fields as the API)."""
    job = _job_or_404(request, job_id)
    data = JobSerializer(job).data
    data["is_finalized"] = job.is_finalized
    data["batch_counts"] = selectors.batch_status_counts(job)
    data["status_html"] = _status_html(job.status)
    data.update(_actions(job, request.user))
    return JsonResponse(data)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id, access.OPERATE)
    try:
        job = services.cancel_job(job.id, actor=request.user)
        messages.success(request, "Job cancelled: no new batch will start; running batches stop within seconds.")
    except JobStateError as exc:
        messages.error(request, str(exc))
    return redirect("job-detail", job_id=job.id)


@login_required
@require_POST
def job_retry(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id, access.OPERATE)
    scope = request.POST.get("scope", "failures")
    try:
        report = services.retry_job(job.id, scope=scope, actor=request.user)
        messages.success(request, f"Retrying {report.dead_batches} dead-lettered batch(es) and "
                                  f"{report.rerun_batches} batch(es) with failed items ({report.items} items).")
    except (JobStateError, ValueError) as exc:
        messages.error(request, str(exc))
    return redirect("job-detail", job_id=job.id)


@login_required
def job_new(request: HttpRequest) -> HttpResponse:
    """Upload a file; "Preview" shows how Zenith will read it (detected mapping, first rows,
    each validated) before anything is submitted. The previewed file is kept on the server
    (jobs.web.staged_uploads) and the mapping box is filled with what was detected, so the user
    corrects the mapping and submits without choosing the file again."""
    form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
    context: dict = {"form": form}
    if request.method != "POST":
        return render(request, "jobs/job_new.html", context)
    if not form.is_valid():
        return render(request, "jobs/job_new.html", context, status=400)
    data = form.cleaned_data
    upload, staged = data["file"], data["staged_upload"]
    project, options = data["project"], data["options"]
    previewing = request.POST.get("action") == "preview"
    if upload and data["staged"]:
        staged_uploads.discard(request.user, data["staged"])  # replaced by the new file
    if upload and previewing:
        staged = _stage(request, upload)
    source = staged.path.open("rb") if staged else upload.open("rb")
    name = staged.name if staged else upload.name
    try:
        if data["save_mapping_as"] and options.get("mapping"):
            save_mapping(project, data["save_mapping_as"], options["mapping"], request.user)
        if previewing:
            context["preview"] = preview_upload(project, source, name, data["data_type"], options=options)
            context["preview_reading"] = import_reading(context["preview"]["detected"], shown_elsewhere=("diagnosis",))
            context["preview_table"] = preview_table(context["preview"]["rows"])
            _keep_for_correction(form, context, staged, editable_mapping(context["preview"]))
            return render(request, "jobs/job_new.html", context)
        job = services.submit_file(
            project=project, data_type=data["data_type"], raw=source, name=name, priority=data["priority"],
            submitted_by=request.user, options=options, correlation_id=getattr(request, "correlation_id", ""))
    except ZenithError as exc:
        http_status, _, message, _ = describe(exc)
        form.add_error(None, message)
        if staged is None:
            staged = _stage(request, upload)  # the correction needs no new pick either
        _keep_for_correction(form, context, staged)
        return render(request, "jobs/job_new.html", context, status=http_status)
    finally:
        source.close()
    if staged:
        staged_uploads.discard(request.user, staged.token)
    messages.success(request, f"Submitted {job.total_items:,} items in {job.total_batches:,} batches.")
    return redirect("job-detail", job_id=job.id)


def _stage(request: HttpRequest, upload) -> staged_uploads.StagedUpload | None:
    """Keeps the upload for the next submit; a full disk only costs the user a new pick."""
    try:
        return staged_uploads.stage(request.user, upload)
    except OSError:
        logger.warning("could not keep an uploaded file for its submit", exc_info=True)
        return None


def _keep_for_correction(form: UploadForm, context: dict, staged: staged_uploads.StagedUpload | None,
                         mapping: dict | None = None) -> None:
    """Re-renders the form with the kept file's token and, after a preview, the mapping it used."""
    form.data = form.data.copy()
    form.data["staged"] = staged.token if staged else ""
    if mapping is not None:
        form.data["mapping"] = json.dumps(mapping, indent=1, ensure_ascii=False)
        form.data["mapping_name"] = ""  # a saved mapping is copied into the box, to be edited there
    context["staged"] = staged
