"""The pages an analyst works in, past the job page's first rows: a stored transaction with its
provenance and everything that mentions it, a reconciliation job by outcome, an entity job's
groups; and what the job page adds (its import details and summary as sentences and tables,
the analysis charts, links to these pages).

Thin views, as in jobs/web/views.py: they read through jobs.selectors.analyst and keep the
membership rule (a job or transaction of a project the user is not a member of is a 404,
exactly like one that does not exist: docs/operations.md, "Accounts and roles"). A refusal,
such as a page link that names no position, is a `ZenithError` shown with `describe`'s
sentence and status (docs/design.md, "Errors").
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from jobs.datatypes import stored_source
from jobs.errors import ResultFilterError, ZenithError, describe
from jobs.models import MatchOutcome, ProcessingJob
from jobs.selectors import analyst
from jobs.selectors import core as selectors
from jobs.web import analysis_charts, readable

PAGE_SIZE = 50
ENTITY_PAGE_SIZE = 200


def _visible_job(request: HttpRequest, job_id) -> ProcessingJob:
    job = selectors.visible_job(request.user, job_id)
    if job is None:
        raise Http404("Job not found")
    return job


def _cursors(request: HttpRequest) -> dict[str, str | None]:
    return {"after": request.GET.get("after") or None, "before": request.GET.get("before") or None}


def _refused(request: HttpRequest, template: str, context: dict, exc: ZenithError) -> HttpResponse:
    status, _, message, _ = describe(exc)
    return render(request, template, {**context, "error": message}, status=status)


# --- a stored transaction ----------------------------------------------------------------------


@login_required
def transaction_detail(request: HttpRequest, project_id: str, external_id: str) -> HttpResponse:
    transaction = analyst.project_transaction(user=request.user, project_id=project_id, external_id=external_id)
    if transaction is None:
        raise Http404("Transaction not found")
    return render(request, "jobs/transaction_detail.html", {
        "transaction": transaction,
        "project": transaction.project,
        "provenance": analyst.provenance(transaction=transaction),
        "findings": analyst.transaction_findings(transaction=transaction),
        "matches": analyst.transaction_matches(transaction=transaction),
        "similar": analyst.transaction_similar(transaction=transaction, compute=request.GET.get("similar") == "1"),
    })


@login_required
def transaction_by_pk(request: HttpRequest, pk: int) -> HttpResponse:
    """A transaction by its row id (what a link that knows no external id has): its page."""
    transaction = analyst.transaction_by_pk(user=request.user, pk=pk)
    if transaction is None:
        raise Http404("Transaction not found")
    return redirect("transaction-detail", project_id=transaction.project_id, external_id=transaction.external_id)


# --- a reconciliation job ----------------------------------------------------------------------

RECONCILIATION_TABS = (
    (MatchOutcome.MATCHED, "Matched"),
    (MatchOutcome.AMBIGUOUS, "Ambiguous"),
    (MatchOutcome.UNMATCHED, "Unmatched lines"),
    (analyst.LEDGER, "Unmatched ledger rows"),
)


@login_required
def reconciliation_view(request: HttpRequest, job_id) -> HttpResponse:
    job = _visible_job(request, job_id)
    if analyst.results_kind(job=job) != "matches":
        raise Http404("This job has no reconciliation view")
    show = request.GET.get("show") or MatchOutcome.MATCHED
    overview = analyst.reconciliation_overview(job=job)
    rate = overview["match_rate"]
    overview["match_rate_text"] = f"{rate:.1%}" if isinstance(rate, (int, float)) else None
    counts = {**overview["outcomes"], analyst.LEDGER: overview["ledger_unmatched"]}
    context = {"job": job, "overview": overview, "show": show,
               "tabs": [{"key": key, "label": text, "count": counts.get(key)} for key, text in RECONCILIATION_TABS]}
    try:
        if show not in analyst.RECONCILIATION_VIEWS:
            raise ResultFilterError(f"show must be one of: {', '.join(analyst.RECONCILIATION_VIEWS)}")
        if show == analyst.LEDGER:
            page = analyst.unmatched_ledger_rows(job=job, size=PAGE_SIZE, **_cursors(request))
        else:
            page = analyst.statement_lines(job=job, outcome=show, size=PAGE_SIZE, **_cursors(request))
    except ZenithError as exc:
        return _refused(request, "jobs/reconciliation.html", context, exc)
    return render(request, "jobs/reconciliation.html", {**context, "page": page, "query": f"show={show}"})


# --- an entity job -----------------------------------------------------------------------------


@login_required
def entity_groups_view(request: HttpRequest, job_id) -> HttpResponse:
    job = _visible_job(request, job_id)
    if analyst.results_kind(job=job) != "entities":
        raise Http404("This job has no entity groups")
    everything = request.GET.get("all") == "1"
    context = {"job": job, "everything": everything, "summary": job.summary or {}}
    try:
        page, groups = analyst.entity_groups(job=job, grouped_only=not everything, size=ENTITY_PAGE_SIZE,
                                             **_cursors(request))
    except ZenithError as exc:
        return _refused(request, "jobs/entity_groups.html", context, exc)
    return render(request, "jobs/entity_groups.html", {**context, "page": page, "groups": groups,
                                                       "query": "all=1" if everything else ""})


# --- what the job page adds ----------------------------------------------------------------------


def job_page_context(job: ProcessingJob) -> dict:
    """The job page's readable import details and summary, the analysis charts (once the job
    has finished: they read all its records) and links to the pages above."""
    kind = analyst.results_kind(job=job)
    context = {
        # The diagnosis has a section of its own (templates/jobs/_import_diagnosis.html).
        "reading": readable.import_reading(job.import_details, shown_elsewhere=("diagnosis",)),
        "summary_view": readable.summary_view(job.data_type, kind, job.summary),
        "analysis_charts": None,
        "results_pages": [],
        # Result columns naming stored transactions of the project: linked to their pages.
        "transaction_columns": {"transactions": ["external_id"], "matches": ["matched_external_id"]}.get(
            kind or "", ["external_id", "related_external_id"] if kind == "findings"
            and stored_source.reads_project(job.options) else []),
    }
    if kind == "matches":
        context["results_pages"].append(("job-reconciliation", "Reconciliation by outcome"))
    if kind == "entities":
        context["results_pages"].append(("job-entities", "Entity groups"))
    if kind == "findings" and job.completed_at:
        context["analysis_charts"] = analysis_context(job)
    return context


def analysis_context(job: ProcessingJob) -> dict:
    """The three analysis charts with the numbers each draws (for its table)."""
    short = str(job.id)[:8]
    over_time = analyst.findings_over_time(job=job)
    amounts = analyst.amount_distribution(job=job)
    summary = job.summary or {}
    benford = []
    for key in ("benford_first_digit", "benford_first_two_digits"):
        test = summary.get(key)
        if isinstance(test, dict) and test.get("observed"):
            rows = [{"digit": digit, "observed": f"{test['observed'].get(digit, 0):.1%}", "expected": f"{share:.1%}",
                     "deviates": digit in {d["digit"] for d in test.get("deviating_digits") or []}}
                    for digit, share in test["expected"].items()]
            benford.append({"test": test, "rows": rows, "key": key,
                            "svg": analysis_charts.benford_svg(test, f"chart-{key.replace('_', '-')}-{short}")})
    periods = [{**p, "label": analysis_charts.period_label(p["start"], over_time["unit"]),
                "total": sum(p[s] for s in analysis_charts.SEVERITIES)} for p in over_time["periods"]]
    return {
        "over_time": {"svg": analysis_charts.findings_over_time_svg(over_time, f"chart-findings-time-{short}"),
                      "unit": over_time["unit"], "periods": periods},
        "amounts": {"svg": analysis_charts.amounts_svg(amounts, f"chart-amounts-{short}"), **amounts,
                    "shown_marks": len(amounts["marks"])},
        "benford": benford,
    }
