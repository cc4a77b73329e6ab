"""The findings pages of an analysis job: the browser (filters and sort in the query string, so
a view can be bookmarked and shared; keyset pages), one finding with its transaction and review
history, the review form, and the reviewed set as CSV.

Thin: filters, pages and details come from jobs.selectors.findings, reviews are written by
jobs.services.reviews, who may review is jobs.selectors.access's REVIEW, and every refusal
reads as jobs.errors.describe words it (docs/design.md, "Findings and reviews").
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from jobs.errors import NotFound, ResultFilterError, ZenithError, describe
from jobs.forensics.redflags import ALL_RULES
from jobs.models import ProcessingJob, ReviewState, Severity
from jobs.selectors import access
from jobs.selectors import findings as selectors
from jobs.selectors.results import source_for
from jobs.services.reviews import review_finding
from jobs.web.views import _job_or_404

#: the query-string names of a position in the list (besides the filters, sort and size)
POSITION = ("after", "before", "page")
SORTABLE = ("severity", "date", "amount", "rule")


def _findings_job(request: HttpRequest, job_id, action: str = access.READ) -> ProcessingJob:
    job = _job_or_404(request, job_id, action)
    source = source_for(job)
    if source is None or source.kind != "findings":
        raise Http404("This job has no findings.")
    return job


def _page_size(value: str | None) -> int:
    try:
        size = int(value or selectors.DEFAULT_PAGE_SIZE)
    except ValueError:
        raise ResultFilterError(f"size must be one of: {', '.join(map(str, selectors.PAGE_SIZES))}") from None
    if size not in selectors.PAGE_SIZES:
        raise ResultFilterError(f"size must be one of: {', '.join(map(str, selectors.PAGE_SIZES))}")
    return size


def browse_query(params: QueryDict, *, position: bool = True) -> str:
    """The browser's own parameters from `params` (filters, sort, size and, with `position`,
    the page), as a query string: what a finding page carries to lead back to its list."""
    names = (*selectors.FindingFilters.NAMES, "sort", "size", *(POSITION if position else ()))
    return urlencode([(name, params[name]) for name in names if params.get(name)])


def _link(base: list[tuple[str, str]], **extra: str) -> str:
    return "?" + urlencode(base + [(k, v) for k, v in extra.items() if v])


@login_required
def findings_browser(request: HttpRequest, job_id) -> HttpResponse:
    job = _findings_job(request, job_id)
    params = request.GET
    context = {
        "job": job, "form": {name: params.get(name, "") for name in (*selectors.FindingFilters.NAMES, "sort", "size")},
        "rules": sorted(ALL_RULES), "severities": Severity.choices, "review_filters": selectors.REVIEW_FILTER_LABELS,
        "sort_choices": selectors.SORT_CHOICES, "page_sizes": selectors.PAGE_SIZES,
        "can_review": access.may(request.user, job.project_id, access.REVIEW),
    }
    try:
        with selectors.quick_reads():
            filters = selectors.FindingFilters.parse(params)
            sort = selectors.Sort.parse(params.get("sort"))
            size = _page_size(params.get("size"))
            findings = selectors.filtered_findings(job, filters)
            page = selectors.findings_page(findings, sort, after=params.get("after") or None,
                                           before=params.get("before") or None, last=params.get("page") == "last",
                                           size=size, values=selectors.sort_values(sort, filters))
            total, more = selectors.summary_count(job, filters), False
            if total is None:
                total, more = selectors.count_up_to(findings)
            listed = selectors.with_reviews(job.project_id, page.rows)
    except ZenithError as exc:
        http_status, _, message, _ = describe(exc)
        context["error"] = message
        return render(request, "jobs/findings/browser.html", context, status=http_status)
    base = filters.query()
    if sort.value != selectors.DEFAULT_SORT:
        base.append(("sort", sort.value))
    if size != selectors.DEFAULT_PAGE_SIZE:
        base.append(("size", str(size)))
    here = browse_query(params)
    suffix = f"?{here}" if here else ""
    rows = [{"item": item, "amount": money(item.finding.amount),
             "url": reverse("finding-detail", args=[job.id, item.finding.id]) + suffix} for item in listed]
    context.update({
        "filters": filters, "sort": sort, "rows": rows, "total": total, "more_than": more,
        "next_url": _link(base, after=page.next_cursor) if page.next_cursor else None,
        "previous_url": _link(base, before=page.previous_cursor) if page.previous_cursor else None,
        "first_url": _link(base) if page.previous_cursor else None,
        "last_url": _link(base, page="last") if page.next_cursor else None,
        "clear_url": reverse("job-findings", args=[job.id]),
        "csv_url": reverse("job-findings-reviewed-csv", args=[job.id]) + _link(base),
        "history_csv_url": reverse("job-findings-reviewed-csv", args=[job.id]) + _link(base, history="1"),
        "columns": _columns(base, sort),
    })
    return render(request, "jobs/findings/browser.html", context)


def _columns(base: list[tuple[str, str]], sort: selectors.Sort) -> dict[str, dict]:
    """The table's sortable headers: a link that sorts by the column (the other way round when
    it is the current sort) and the aria-sort state of the current one."""
    kept = [(k, v) for k, v in base if k != "sort"]
    columns = {}
    for name in SORTABLE:
        current = sort.key.name == name
        descending = not sort.descending if current else name in ("date", "amount")
        columns[name] = {
            "url": _link(kept, sort=("-" if descending else "") + name),
            "aria_sort": ("descending" if sort.descending else "ascending") if current else "",
            "label": selectors.SORT_KEYS[name].last_label if descending else selectors.SORT_KEYS[name].first_label,
        }
    return columns


def _detail_context(request: HttpRequest, job: ProcessingJob, finding_id: int, list_params: QueryDict) -> dict:
    try:
        detail = selectors.finding_detail(job, finding_id)
    except NotFound:
        raise Http404("Finding not found") from None
    back = browse_query(list_params)
    history = detail["history"]
    finding = detail["finding"]
    transactions = [("The transaction", _held(detail["transaction"]))]
    if finding.related_external_id:
        transactions.append((f"The earlier payment {finding.related_external_id}", _held(detail["related"])))
    return {
        "job": job, **detail, "amount": money(finding.amount), "transactions": transactions,
        "states": ReviewState.choices,
        "current": history[0] if history else None, "seen_review": history[0].id if history else 0,
        "can_review": access.may(request.user, job.project_id, access.REVIEW),
        "back_query": back, "back_url": reverse("job-findings", args=[job.id]) + (f"?{back}" if back else ""),
        "note_max": selectors.NOTE_MAX_CHARS, "review": {"state": "", "note": ""},
    }


FIELD_LABELS = {"external_id": "Id", "date": "Date", "amount": "Amount", "currency": "Currency",
                "account": "Account", "counterparty": "Counterparty", "description": "Description",
                "reference": "Reference", "created_at": "Stored at"}
PROSE_FIELDS = ("counterparty", "description")


def money(value: Decimal) -> str:
    """An amount exactly, grouped, with at least two decimals: 1,234.50, 0.125."""
    cents = value.quantize(Decimal("0.01"))
    return f"{cents if cents == value else value.normalize():,}"


def _held(held: dict | None) -> dict | None:
    """A transaction's values as labelled rows for the finding page."""
    if held is None:
        return None
    rows = []
    for key, value in held["values"].items():
        if isinstance(value, Decimal):
            value = money(value)
        elif isinstance(value, dt.datetime):
            value = f"{value:%Y-%m-%d %H:%M} UTC"
        elif isinstance(value, dt.date):
            value = value.isoformat()
        rows.append({"label": FIELD_LABELS.get(key, key), "value": value, "prose": key in PROSE_FIELDS})
    return {"source": held["source"], "rows": rows}


@login_required
def finding_detail(request: HttpRequest, job_id, finding_id: int) -> HttpResponse:
    job = _findings_job(request, job_id)
    return render(request, "jobs/findings/detail.html", _detail_context(request, job, finding_id, request.GET))


@login_required
@require_POST
def finding_review(request: HttpRequest, job_id, finding_id: int) -> HttpResponse:
    """Saves a review, then back to the finding (its list position kept); a refused one shows
    the page again with the reason and what was typed."""
    job = _findings_job(request, job_id, access.REVIEW)
    try:
        finding = selectors.job_finding(job, finding_id)
    except NotFound:
        raise Http404("Finding not found") from None
    back = QueryDict(request.POST.get("back", ""))
    seen = request.POST.get("seen_review", "")
    state, note = request.POST.get("state", ""), request.POST.get("note", "")
    try:
        review = review_finding(finding=finding, state=state, note=note, actor=request.user,
                                seen_review=int(seen) if seen.isdigit() else None)
    except ZenithError as exc:
        http_status, _, message, _ = describe(exc)
        context = _detail_context(request, job, finding.id, back)
        context.update({"error": message, "review": {"state": state, "note": note}})
        return render(request, "jobs/findings/detail.html", context, status=http_status)
    messages.success(request, f"Review saved: {review.get_state_display().lower()}.")
    query = browse_query(back)
    return redirect(reverse("finding-detail", args=[job.id, finding.id]) + (f"?{query}" if query else ""))


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def reviewed_csv(request: HttpRequest, job_id) -> HttpResponse:
    """The reviewed findings that pass the browser's filters, with their current review
    (`?history=1`: every review), as CSV."""
    job = _findings_job(request, job_id)
    try:
        filters = selectors.FindingFilters.parse(request.GET)
    except ZenithError as exc:
        http_status, _, message, _ = describe(exc)
        return HttpResponse(message, status=http_status, content_type="text/plain; charset=utf-8")
    history = request.GET.get("history", "").lower() in ("1", "true", "yes")
    writer = csv.writer(_Echo())
    rows = selectors.reviewed_csv_rows(job, filters, history=history)
    response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8")
    name = "review-history" if history else "reviewed"
    response["Content-Disposition"] = f'attachment; filename="zenith-job-{job.id}-{name}.csv"'
    return response
