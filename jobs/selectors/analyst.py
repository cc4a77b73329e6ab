"""The read side of the pages an analyst works in: a stored transaction with its provenance
and everything that mentions it, a reconciliation job by outcome, an entity job's groups,
and the series the analysis charts draw. No writes here.

Who may see what is not decided here: transactions are found through
`jobs.selectors.core.project_for_user` (a project the user is not a member of reads like
one that does not exist), and the job-level functions take a job the caller already found
through `visible_jobs`. Long lists are paginated by key (`jobs.selectors.keyset`), so a late
page reads only its own rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.db.models.functions import Abs, TruncDay, TruncMonth, TruncWeek

from jobs.datatypes import reconciliation
from jobs.datatypes.registry import registry
from jobs.engine.payloads import CODEC_CSV_ZLIB
from jobs.errors import NoSimilarityIndex
from jobs.forensics.redflags import ACCOUNT_OUTLIER, DUPLICATE_PAYMENT
from jobs.models import (
    AnalysisRecord,
    Batch,
    BatchPayload,
    Finding,
    MatchOutcome,
    ProcessingJob,
    Severity,
    StatementMatch,
    Transaction,
)
from jobs.selectors import keyset, results
from jobs.selectors.core import project_for_user

logger = logging.getLogger(__name__)

TRANSACTION_COLUMNS = ("external_id", "date", "amount", "currency", "account", "counterparty", "description",
                       "reference")


def job_types(*, kind: str) -> list[str]:
    """The data types whose results are of `kind` ("findings", "matches", ...)."""
    return [name for name, spec in registry().items() if getattr(spec.handler, "results_kind", "") == kind]


def results_kind(*, job: ProcessingJob) -> str | None:
    source = results.source_for(job)
    return source.kind if source else None


# --- a stored transaction -------------------------------------------------------------------


def project_transaction(*, user: AbstractBaseUser | AnonymousUser, project_id: str,
                        external_id: str) -> Transaction | None:
    """The project's stored transaction with this id, if the user sees the project; None
    otherwise (the two read the same)."""
    project = project_for_user(user, project_id)
    if project is None:
        return None
    return Transaction.objects.filter(project=project, external_id=external_id).first()


def transaction_by_pk(*, user: AbstractBaseUser | AnonymousUser, pk: int) -> Transaction | None:
    """A stored transaction by its row id, if the user sees its project; None otherwise."""
    transaction = Transaction.objects.filter(pk=pk).first()
    if transaction is None or project_for_user(user, transaction.project_id) is None:
        return None
    return transaction


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where a stored transaction came from. `job` is None once retention deleted the job that
    stored it (the row is the project's and stays). `line` is the file's own line number, set
    only where it is known exactly; `line_note` says why it is not otherwise."""

    job: ProcessingJob | None
    record_number: int | None
    line: int | None
    line_note: str
    batch_number: int | None = None


def provenance(*, transaction: Transaction) -> Provenance:
    """The job, file and position a stored transaction was read from.

    The record number counts the file's records from one, in the order the import read them
    (the item index plus one). The file line is given only when it is exact: the record was
    in a batch the CSV fast path cut from the file's own lines (payload codec `csv+zlib`,
    jobs.importing.blocks), which only happens while every line from the header on is one
    record, so the line is the header's line plus the record number. Records read by the full
    parser (blank rows skipped, quoted values spanning lines), from spreadsheets, JSON or OFX
    carry no line that could be vouched for (docs/design.md, "Analyst pages")."""
    job = ProcessingJob.objects.filter(pk=transaction.job_id).first() if transaction.job_id else None
    index = transaction.item_index
    if job is None:
        note = ("The job that stored it has since been deleted by retention; the transaction is the project's and "
                "was kept.") if transaction.job_id else "No job is recorded for it."
        return Provenance(None, None if index is None else index + 1, None, note)
    if index is None:
        return Provenance(job, None, None, "Its position in the input was not recorded.")
    batch = (Batch.objects.filter(job=job, start_index__lte=index).order_by("-number")
             .values_list("pk", "number").first())
    codec = (BatchPayload.objects.filter(batch_id=batch[0]).values_list("codec", flat=True).first()
             if batch else None)
    details = job.import_details or {}
    header_row = details.get("header_row")
    if codec == CODEC_CSV_ZLIB and isinstance(header_row, int) and not isinstance(header_row, bool):
        return Provenance(job, index + 1, header_row + 1 + index, "", batch[1] if batch else None)
    return Provenance(job, index + 1, None, _why_no_line(job, details, codec), batch[1] if batch else None)


def _why_no_line(job: ProcessingJob, details: dict, codec: str | None) -> str:
    fmt = details.get("format") or job.input_format
    if fmt == "items" or not (fmt or job.input_name):
        return "It was sent as JSON items, not a file: the record number is its position among them."
    if fmt == "xlsx":
        return "Spreadsheet rows left blank are not records, so the sheet row is not given."
    if fmt in ("json", "jsonl", "ofx"):
        return f"A {fmt.upper()} record has no line of its own to name."
    if codec is None:
        return "The batch that carried it is gone, so its line cannot be vouched for."
    return ("This part of the file was read by the full parser, which skips blank rows and lets quoted values span "
            "lines: the record number is exact, a line number would be a guess.")


def transaction_findings(*, transaction: Transaction, limit: int = 50) -> dict:
    """Findings of the project's analysis jobs on this transaction's id, or naming it as the
    earlier payment of a duplicate; newest job first. Two indexed reads: by (job, external id),
    and the duplicate-payment findings (the one rule that names an earlier payment) by
    (job, rule)."""
    jobs = ProcessingJob.objects.filter(project_id=transaction.project_id, data_type__in=job_types(kind="findings"))
    findings = Finding.objects.filter(job_id__in=jobs.values("id")).select_related("job")
    order = ("-job__created_at", "job_id", "item_index", "rule")
    flagged = findings.filter(external_id=transaction.external_id)
    named = findings.filter(rule=DUPLICATE_PAYMENT, related_external_id=transaction.external_id)
    found = {row.pk: row for query in (flagged, named) for row in query.order_by(*order)[:limit]}
    rows = sorted(found.values(), key=lambda row: (-row.job.created_at.timestamp(), row.item_index, row.rule))
    total = len(found) if len(found) < limit else (
        flagged.count() + named.exclude(external_id=transaction.external_id).count())
    return {"rows": rows[:limit], "total": total, "limit": limit}


def transaction_matches(*, transaction: Transaction, limit: int = 50) -> list[dict]:
    """Statement lines of the project's reconciliation jobs matched to this transaction, and
    ambiguous lines that name it among their candidates; newest job first."""
    jobs = list(ProcessingJob.objects.filter(project_id=transaction.project_id,
                                             data_type__in=job_types(kind="matches")).order_by("-created_at")[:100])
    if not jobs:
        return []
    by_id = {job.id: job for job in jobs}
    lines = StatementMatch.objects.filter(job_id__in=list(by_id))
    matched = list(lines.filter(transaction_id=transaction.pk).order_by("job_id", "item_index")[:limit])
    ambiguous = lines.filter(outcome=MatchOutcome.AMBIGUOUS)
    if connection.features.supports_json_field_contains:
        candidates = list(ambiguous.filter(candidates__contains=[transaction.external_id])
                          .order_by("job_id", "item_index")[:limit])
    else:  # SQLite: the few ambiguous lines are looked at here
        candidates = [row for row in ambiguous.order_by("job_id", "item_index").iterator(chunk_size=500)
                      if transaction.external_id in (row.candidates or [])][:limit]
    order = {job.id: position for position, job in enumerate(jobs)}
    rows = [{"line": row, "job": by_id[row.job_id], "as_candidate": row.outcome == MatchOutcome.AMBIGUOUS}
            for row in [*matched, *candidates]]
    return sorted(rows, key=lambda row: (order[row["job"].id], row["line"].item_index))[:limit]


# Find-similar compares the query with every vector of the embedding job (jobs.selectors.results
# find_similar): beyond this many texts it runs only when asked, so the page stays fast
# (docs/design.md, "Analyst pages").
SIMILAR_INLINE_TEXTS = 2000


def transaction_similar(*, transaction: Transaction, compute: bool = False, k: int = 10) -> dict:
    """Similar stored transactions from the project's latest embedding job over them:
    `state` "shown" (with `rows`), "deferred" (the job is large: run only when `compute`), or
    "no_index" (with the `message` saying what to submit)."""
    try:
        job = results.project_embedding_job(transaction.project_id)
    except NoSimilarityIndex as exc:
        return {"state": "no_index", "message": exc.message}
    texts = job.items_processed
    if texts > SIMILAR_INLINE_TEXTS and not compute:
        return {"state": "deferred", "job": job, "texts": texts}
    body = results.similar_transactions(transaction.project_id, transaction.external_id, k=k, job_id=str(job.id))
    return {"state": "shown", "job": job, "texts": texts, "rows": body["results"]}


# --- a reconciliation job ---------------------------------------------------------------------

LEDGER = "ledger"  # the reconciliation view's fourth list: ledger rows of the period no line matched
RECONCILIATION_VIEWS = (MatchOutcome.MATCHED, MatchOutcome.AMBIGUOUS, MatchOutcome.UNMATCHED, LEDGER)
LINE_KEYS = (keyset.Key("item_index"),)
LEDGER_KEYS = (keyset.Key("date", parse=keyset.date), keyset.Key("external_id", parse=keyset.text))
LINE_COLUMNS = ("item_index", "line_id", "date", "amount", "currency", "counterparty", "reference", "description",
                "outcome", "stage", "confidence", "candidates", "explanation", "matched_external_id",
                "transaction_id")


def reconciliation_overview(*, job: ProcessingJob) -> dict:
    """Lines by outcome and the period's unmatched ledger rows: from the summary once the
    job is finished, counted otherwise."""
    summary = job.summary or {}
    outcomes = summary.get("outcomes")
    if not isinstance(outcomes, dict):
        outcomes = {outcome: 0 for outcome in MatchOutcome.values}
        for row in StatementMatch.objects.filter(job=job).values("outcome").annotate(n=Count("id")):
            outcomes[row["outcome"]] = row["n"]
    period = summary.get("period") if isinstance(summary.get("period"), list) else None
    return {"outcomes": {key: int(outcomes.get(key, 0)) for key in MatchOutcome.values},
            "lines": sum(int(v) for v in outcomes.values()), "match_rate": summary.get("match_rate"),
            "period": period, "ledger_in_period": summary.get("ledger_transactions_in_period"),
            "ledger_unmatched": summary.get("ledger_unmatched_in_period"),
            "by_stage": summary.get("matched_by_stage") or {}}


def statement_lines(*, job: ProcessingJob, outcome: str, after: str | None = None, before: str | None = None,
                    size: int = 50) -> keyset.Page:
    """A page of the job's statement lines with this outcome, in statement order. A matched
    line carries its ledger row (`ledger`), an ambiguous one its candidates' ledger rows
    (`candidate_rows`, best first, None where the row is gone)."""
    lines = StatementMatch.objects.filter(job=job, outcome=outcome).values(*LINE_COLUMNS)
    page = keyset.paginate(lines, keys=LINE_KEYS, size=size, after=after, before=before)
    wanted = {row["transaction_id"] for row in page.rows if row["transaction_id"]}
    names = {name for row in page.rows if row["outcome"] == MatchOutcome.AMBIGUOUS for name in row["candidates"] or []}
    ledger = Transaction.objects.filter(project_id=job.project_id)
    by_pk = {row["pk"]: row for row in ledger.filter(pk__in=wanted).values("pk", *TRANSACTION_COLUMNS)} \
        if wanted else {}
    by_id = {row["external_id"]: row for row in ledger.filter(external_id__in=names).values(
        "pk", *TRANSACTION_COLUMNS)} if names else {}
    for row in page.rows:
        row["ledger"] = by_pk.get(row["transaction_id"])
        row["candidate_rows"] = [{"external_id": name, "row": by_id.get(name)} for name in row["candidates"] or []]
    return page


def unmatched_ledger_rows(*, job: ProcessingJob, after: str | None = None, before: str | None = None,
                          size: int = 50) -> keyset.Page:
    """A page of the project's ledger rows in the statement's period that no line of the job
    matched, by date then id: the rows the summary counts (jobs.datatypes.reconciliation)."""
    summary = job.summary or {}
    period = summary.get("period")
    currencies = summary.get("currencies")
    if not (isinstance(currencies, list) and all(isinstance(c, str) for c in currencies)):
        currencies = None  # a summary from before they were listed: read from the lines
    if isinstance(period, list) and len(period) == 2:
        first, last = (dt.date.fromisoformat(value) for value in period)
    else:
        span = StatementMatch.objects.filter(job=job).aggregate(first=Min("date"), last=Max("date"))
        first, last = span["first"], span["last"]
    if first is None:
        return keyset.Page([], None, None)
    ledger = reconciliation.unmatched_ledger(job, reconciliation.period_ledger(job, first, last,
                                                                              currencies=currencies))
    return keyset.paginate(ledger.values("pk", *TRANSACTION_COLUMNS), keys=LEDGER_KEYS, size=size, after=after,
                           before=before)


# --- an entity job ----------------------------------------------------------------------------

ENTITY_KEYS = (keyset.Key("group_size", descending=True), keyset.Key("group_key", parse=keyset.text),
               keyset.Key("item_index"))


def entity_groups(*, job: ProcessingJob, grouped_only: bool = True, after: str | None = None,
                  before: str | None = None, size: int = 200) -> tuple[keyset.Page, list[dict]]:
    """A page of the job's names in group order (largest groups first, the index's order),
    and the same names gathered by group key. A group cut by the page's end says so
    (`continues`), as does one begun on an earlier page (`continued`)."""
    names = results.entity_names(job=job)
    if grouped_only:
        names = names.filter(group_size__gt=1)
    page = keyset.paginate(names.values("item_index", "external_id", "name", "normalized_name", "entity_key",
                                        "group_key", "group_size", "entity_type", "country"),
                           keys=ENTITY_KEYS, size=size, after=after, before=before)
    groups: list[dict] = []
    for row in page.rows:
        if not groups or groups[-1]["key"] != row["group_key"]:
            groups.append({"key": row["group_key"], "size": row["group_size"], "names": [], "head": None,
                           "continued": False, "continues": False})
        group = groups[-1]
        group["names"].append(row)
        if row["entity_key"] == row["group_key"] and group["head"] is None:
            group["head"] = row["normalized_name"]
    if groups:
        groups[0]["continued"] = not page.is_first and _more_of(names, groups[0], page.rows[0], forward=False)
        groups[-1]["continues"] = _more_of(names, groups[-1], page.rows[-1], forward=True)
    for group in groups:
        group["distinct"] = len({row["normalized_name"] for row in group["names"]})
    return page, groups


def _more_of(names: QuerySet, group: dict, edge: dict, *, forward: bool) -> bool:
    index = {"item_index__gt" if forward else "item_index__lt": edge["item_index"]}
    return names.filter(group_key=group["key"], group_size=group["size"], **index).exists()


# --- series for the analysis charts -------------------------------------------------------------

CHART_CACHE_SECONDS = 24 * 3600


def _cached(job: ProcessingJob, name: str, compute: Callable[[], dict]) -> dict:
    """A finished job's chart series, computed once and kept in Django's cache (its results no
    longer change; a retry re-finalizes it with a new completion time, hence a new key:
    docs/design.md, "Analyst pages"). An unfinished job's, or any when the cache is unreachable,
    are computed each time."""
    if not job.completed_at:
        return compute()
    key = f"analyst-chart:{name}:{job.id}:{job.completed_at.timestamp()}"
    try:
        found = cache.get(key)
    except Exception:  # the cache is an optimisation: Redis gone still shows the chart
        logger.warning("chart cache unreachable", exc_info=True)
        return compute()
    if found is not None:
        return found
    value = compute()
    try:
        cache.set(key, value, CHART_CACHE_SECONDS)
    except Exception:
        logger.warning("chart cache unreachable", exc_info=True)
    return value


def findings_over_time(*, job: ProcessingJob) -> dict:
    """The job's findings counted by the date of the flagged record and by severity, per day,
    week or month (whichever gives a readable number of bars for the span)."""

    def compute() -> dict:
        findings = Finding.objects.filter(job=job)
        span = findings.aggregate(first=Min("date"), last=Max("date"))
        if span["first"] is None:
            return {"unit": None, "periods": []}
        days = (span["last"] - span["first"]).days
        unit, trunc = ("day", TruncDay) if days <= 45 else ("week", TruncWeek) if days <= 365 else ("month", TruncMonth)
        counts: dict[dt.date, dict[str, int]] = defaultdict(lambda: {s: 0 for s in Severity.values})
        for row in findings.annotate(period=trunc("date")).values("period", "severity").annotate(n=Count("id")):
            period = row["period"].date() if isinstance(row["period"], dt.datetime) else row["period"]
            counts[period][row["severity"]] += row["n"]
        return {"unit": unit, "periods": [{"start": start, **counts[start]} for start in sorted(counts)]}

    return _cached(job, "findings-over-time", compute)


# Bin edges of the amounts distribution, 1-2-5 steps per power of ten (how people round money).
_STEPS = (Decimal(1), Decimal(2), Decimal(5))
MAX_OUTLIER_MARKS = 200


def amount_edges(*, low: Decimal, high: Decimal) -> list[Decimal]:
    """1-2-5 edges from the one at or below `low` to the first above `high` (both positive)."""
    exponent = low.adjusted()
    edges: list[Decimal] = []
    while not edges or edges[-1] <= high:
        for step in _STEPS:
            edge = step.scaleb(exponent)
            if edge <= low:
                edges = [edge]
            elif not edges or edges[-1] <= high:
                edges.append(edge)
        exponent += 1
    return edges


def amount_distribution(*, job: ProcessingJob) -> dict:
    """How the job's screened amounts spread (absolute values, every currency, on 1-2-5 bins),
    and where the per-account outliers fall: `bins` of `low`, `high`, `records` and
    `outliers`; `marks`, the outlier findings (at most MAX_OUTLIER_MARKS); `zero`, amounts of
    nothing, which no logarithmic axis shows."""

    def compute() -> dict:
        records = AnalysisRecord.objects.filter(job=job).annotate(size=Abs("amount"))
        positive = Q(size__gt=0)
        span = records.aggregate(low=Min("size", filter=positive), high=Max("size", filter=positive),
                                 n=Count("id", filter=positive), zero=Count("id", filter=Q(size=0)))
        zero = span["zero"]
        outliers = Finding.objects.filter(job=job, rule=ACCOUNT_OUTLIER)
        marks = [{"external_id": external_id, "amount": amount, "currency": currency, "account": account}
                 for external_id, amount, currency, account in outliers.order_by("item_index").values_list(
                     "external_id", "amount", "currency", "account")[:MAX_OUTLIER_MARKS]]
        if not span["n"]:
            return {"bins": [], "marks": marks, "zero": zero, "records": 0, "outliers": outliers.count()}
        edges = amount_edges(low=Decimal(span["low"]), high=Decimal(span["high"]))
        bins = [{"low": low, "high": high, "records": 0, "outliers": 0}
                for low, high in zip(edges, edges[1:], strict=False)]
        which = Case(*[When(size__lt=high, then=Value(i)) for i, high in enumerate(edges[1:])],
                     default=Value(len(bins) - 1), output_field=IntegerField())
        for row in records.filter(size__gt=0).annotate(bin=which).values("bin").annotate(n=Count("id")):
            bins[row["bin"]]["records"] = row["n"]
        for row in outliers.annotate(size=Abs("amount")).filter(size__gt=0).annotate(bin=which).values(
                "bin").annotate(n=Count("id")):
            bins[row["bin"]]["outliers"] = row["n"]
        return {"bins": bins, "marks": marks, "zero": zero, "records": span["n"] + zero,
                "outliers": outliers.count()}

    return _cached(job, "amount-distribution", compute)


def warm_charts(*, job: ProcessingJob) -> None:
    """Computes a finished analysis job's chart series into the cache, so the first reader of
    its page does not wait for them (the finalizer calls it; any other job: nothing to do).
    A flushed cache only makes the next view compute them again."""
    if job.data_type != "analysis" or not job.completed_at:
        return
    findings_over_time(job=job)
    amount_distribution(job=job)
