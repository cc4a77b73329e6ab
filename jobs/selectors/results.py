"""Read side of processing results: what the results API, its CSV download and the job page
show for each data type. No writes here.

A data type's handler names its kind of results with a `results_kind` attribute
("findings", "matches", "entities", "embeddings", "transactions"); a custom handler that
subclasses a built-in inherits its results view, and one without the attribute has none.
Each kind is a `ResultSource`: the columns shown, the filters accepted (query parameters,
validated: a bad value is an error naming the allowed ones, never a silently empty page)
and a stable order, so pages do not shift between requests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When

from jobs.datatypes.registry import get_data_type
from jobs.errors import NoSimilarityIndex, ResultFilterError, UnknownDataType
from jobs.forensics.redflags import ALL_RULES
from jobs.forensics.similarity import unpack_vector
from jobs.models import (
    EntityName,
    Finding,
    JobStatus,
    MatchOutcome,
    ProcessingJob,
    Severity,
    StatementMatch,
    TextEmbedding,
    Transaction,
)
from jobs.selectors import findings
from zenith.infra import csv_safety


@dataclasses.dataclass(frozen=True)
class Filter:
    name: str
    apply: Callable[..., QuerySet]  # (queryset, value), or (queryset, value, job) `with_job`
    help: str
    choices: tuple[str, ...] = ()
    with_job: bool = False


@dataclasses.dataclass(frozen=True)
class ResultSource:
    kind: str
    title: str
    columns: tuple[str, ...]
    queryset: Callable[[ProcessingJob], QuerySet]
    filters: tuple[Filter, ...]
    #: keys of the job summary holding counts worth showing next to the rows
    summary_counts: tuple[str, ...] = ()
    #: the columns the job page shows (the API and CSV give all)
    page_columns: tuple[str, ...] = ()

    def rows(self, job: ProcessingJob, params: Mapping[str, str]) -> QuerySet:
        """The job's result rows (dicts of `columns`) with the filters in `params` applied."""
        queryset = self.queryset(job)
        for spec in self.filters:
            value = params.get(spec.name)
            if value in (None, ""):
                continue
            if spec.choices and value not in spec.choices:
                raise ResultFilterError(f"{spec.name} must be one of: {', '.join(spec.choices)}")
            queryset = spec.apply(queryset, value, job) if spec.with_job else spec.apply(queryset, value)
        return queryset.values(*self.columns)


def _boolean(name: str) -> Callable[[str], bool]:
    def parse(value: str) -> bool:
        lowered = value.lower()
        if lowered in ("1", "true", "yes"):
            return True
        if lowered in ("0", "false", "no"):
            return False
        raise ResultFilterError(f"{name} must be true or false")
    return parse


def _date(name: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ResultFilterError(f"{name} must be an ISO date (YYYY-MM-DD)") from None


_SEVERITY_RANK = Case(When(severity=Severity.HIGH, then=Value(0)), When(severity=Severity.MEDIUM, then=Value(1)),
                      default=Value(2), output_field=IntegerField())

FINDINGS = ResultSource(
    kind="findings", title="Red-flag findings",
    columns=("item_index", "external_id", "rule", "severity", "date", "amount", "currency", "account", "counterparty",
             "score", "related_external_id", "explanation"),
    queryset=lambda job: Finding.objects.filter(job=job).annotate(severity_rank=_SEVERITY_RANK).order_by(
        "severity_rank", "item_index", "rule"),
    filters=(
        Filter("rule", lambda qs, v: qs.filter(rule=v), "Only this rule's findings.", ALL_RULES),
        Filter("severity", lambda qs, v: qs.filter(severity=v), "Only this severity.", tuple(Severity.values)),
        Filter("account", lambda qs, v: qs.filter(account=v), "Only this account."),
        Filter("counterparty", lambda qs, v: qs.filter(counterparty__icontains=v), "Counterparty contains."),
        Filter("q", lambda qs, v: qs.filter(Q(external_id=v) | Q(related_external_id=v)),
               "This record id (flagged or named as the earlier payment)."),
        Filter("review_state", lambda qs, v, job: findings.by_review_state(qs, job, v, per_finding=False),
               "Only findings in this review state (their latest review), or not reviewed yet.",
               findings.REVIEW_FILTERS, with_job=True),
    ),
    summary_counts=("findings_by_rule", "findings_by_severity"),
    page_columns=("external_id", "rule", "severity", "date", "amount", "currency", "account", "counterparty",
                  "explanation"),
)

MATCHES = ResultSource(
    kind="matches", title="Statement lines and their ledger matches",
    columns=("item_index", "line_id", "date", "amount", "currency", "counterparty", "reference", "outcome", "stage",
             "matched_external_id", "confidence", "candidates", "explanation"),
    queryset=lambda job: StatementMatch.objects.filter(job=job).order_by("item_index"),
    filters=(
        Filter("outcome", lambda qs, v: qs.filter(outcome=v), "Only lines with this outcome.",
               tuple(MatchOutcome.values)),
        Filter("stage", lambda qs, v: qs.filter(stage=v), "Only lines matched (or left ambiguous) at this stage.",
               ("reference", "amount_date", "counterparty")),
        Filter("q", lambda qs, v: qs.filter(Q(line_id=v) | Q(matched_external_id=v) | Q(counterparty__icontains=v)),
               "A line id, a ledger transaction id, or part of the counterparty."),
    ),
    summary_counts=("outcomes", "matched_by_stage"),
    page_columns=("line_id", "date", "amount", "currency", "counterparty", "outcome", "stage", "matched_external_id",
                  "candidates", "explanation"),
)


def entity_names(*, job: ProcessingJob) -> QuerySet:
    """The job's `EntityName` rows with their group's `group_key` and `group_size` (kept once per
    distinct name, in `EntityGroupMember`) as if they were the name's own fields."""
    return EntityName.objects.filter(job=job).annotate(group_key=F("group__group_key"),
                                                       group_size=F("group__group_size"))


ENTITIES = ResultSource(
    kind="entities", title="Entities and near-duplicate groups",
    columns=("item_index", "external_id", "name", "normalized_name", "entity_key", "group_key", "group_size",
             "entity_type", "country"),
    queryset=lambda job: entity_names(job=job).order_by("-group_size", "group_key", "item_index"),
    filters=(
        Filter("grouped", lambda qs, v: qs.filter(group_size__gt=1) if _boolean("grouped")(v)
               else qs.filter(group_size=1), "true: only names grouped with near-duplicates."),
        Filter("group", lambda qs, v: qs.filter(group_key=v), "Only this group key."),
        Filter("key", lambda qs, v: qs.filter(entity_key=v), "Only this entity key."),
        Filter("name", lambda qs, v: qs.filter(name__icontains=v), "Name contains."),
    ),
    page_columns=("external_id", "name", "normalized_name", "entity_key", "group_key", "group_size"),
)

EMBEDDINGS = ResultSource(
    kind="embeddings", title="Texts and their near-duplicates",
    columns=("item_index", "external_id", "text", "method", "dimensions", "duplicate_of", "similarity"),
    queryset=lambda job: TextEmbedding.objects.filter(job=job).order_by("item_index"),
    filters=(
        Filter("near_duplicates", lambda qs, v: qs.exclude(duplicate_of="") if _boolean("near_duplicates")(v)
               else qs.filter(duplicate_of=""), "true: only texts that near-duplicate an earlier one."),
        Filter("duplicate_of", lambda qs, v: qs.filter(duplicate_of=v), "Only near-duplicates of this id."),
        Filter("q", lambda qs, v: qs.filter(Q(external_id=v) | Q(text__icontains=v)), "An id, or part of the text."),
    ),
    page_columns=("external_id", "text", "duplicate_of", "similarity"),
)

TRANSACTIONS = ResultSource(
    kind="transactions", title="Transactions stored by this job",
    columns=("item_index", "external_id", "date", "value_date", "amount", "currency", "account", "counterparty",
             "description", "reference"),
    queryset=lambda job: Transaction.objects.filter(job=job).order_by("item_index"),
    filters=(
        Filter("account", lambda qs, v: qs.filter(account=v), "Only this account."),
        Filter("currency", lambda qs, v: qs.filter(currency=v.upper()), "Only this currency."),
        Filter("counterparty", lambda qs, v: qs.filter(counterparty__icontains=v), "Counterparty contains."),
        Filter("date_from", lambda qs, v: qs.filter(date__gte=_date("date_from", v)), "On or after (YYYY-MM-DD)."),
        Filter("date_to", lambda qs, v: qs.filter(date__lte=_date("date_to", v)), "On or before (YYYY-MM-DD)."),
    ),
    page_columns=("external_id", "date", "amount", "currency", "account", "counterparty", "description", "reference"),
)

SOURCES = {source.kind: source for source in (FINDINGS, MATCHES, ENTITIES, EMBEDDINGS, TRANSACTIONS)}


def source_for(job: ProcessingJob) -> ResultSource | None:
    """The results view of the job's data type, or None when it has none."""
    try:
        handler = get_data_type(job.data_type).handler
    except UnknownDataType:
        return None
    return SOURCES.get(getattr(handler, "results_kind", None) or "")


def plain(value: Any) -> Any:
    """A JSON- and CSV-friendly value: amounts as exact decimal strings, dates as ISO."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def plain_row(row: Mapping[str, Any]) -> dict:
    return {key: plain(value) for key, value in row.items()}


def csv_rows(source: ResultSource, rows: QuerySet) -> Iterator[list]:
    """The header, then one list per row; lists (candidates) become ';'-separated text. Every
    cell goes through zenith.infra.csv_safety, so a spreadsheet opening the file evaluates no
    formula an upload smuggled in (numbers from numeric columns stay numbers)."""
    yield list(source.columns)
    for row in rows.iterator(chunk_size=2000):
        yield [csv_safety.cell(_csv_value(row[c])) for c in source.columns]


def _csv_value(value: Any) -> Any:
    if isinstance(value, list):
        return ";".join(map(str, value))
    # Decimals stay Decimal: csv_safety writes them as plain numbers, unprefixed.
    return value if isinstance(value, Decimal) else plain(value)


def find_similar(job: ProcessingJob, *, external_id: str | None = None, text: str | None = None,
                 k: int = 10) -> list[dict]:
    """The `k` texts of an embedding job most similar to one of its texts (by id) or to a
    new `text`, by cosine similarity, best first. Exact (every vector is compared): fine to
    about 10^5 texts per job; larger corpora want an approximate index.

    For a job over the project's stored transactions (`options.source = "project"`), an
    `external_id` the job has no vector for (a transaction stored after the job ran) is
    looked up in the project and its text vectorised on the spot.

    Raises LookupError when `external_id` is not a text of the job (nor, for such a job, a
    stored transaction of its project)."""
    from jobs.datatypes.embedding import embed

    embeddings = TextEmbedding.objects.filter(job=job)
    if external_id is not None:
        row = embeddings.filter(external_id=external_id).order_by("item_index").values_list(
            "item_index", "vector").first()
        if row is not None:
            skip, query = row[0], unpack_vector(row[1])
        else:
            stored_text = _stored_transaction_text(job, external_id)
            if stored_text is None:
                raise LookupError(f"no text with id {external_id!r} in this job")
            skip, query = None, embed(stored_text, job.options)[1]
    else:
        skip, query = None, embed(text or "", job.options)[1]
    dimensions = len(query)
    best: list[tuple[float, int, str, str, str]] = []
    for index, ext_id, body, blob, duplicate_of in embeddings.values_list(
            "item_index", "external_id", "text", "vector", "duplicate_of").iterator(chunk_size=2000):
        if index == skip:
            continue
        vector = unpack_vector(blob)
        if len(vector) != dimensions:
            continue
        score = sum(a * b for a, b in zip(query, vector, strict=True))
        entry = (score, -index, ext_id, body, duplicate_of)
        if len(best) < k:
            heapq.heappush(best, entry)
        elif entry > best[0]:
            heapq.heapreplace(best, entry)
    return [{"external_id": ext_id, "item_index": -neg_index, "similarity": round(score, 4), "text": body,
             "duplicate_of": duplicate_of}
            for score, neg_index, ext_id, body, duplicate_of in sorted(best, reverse=True)]


def _stored_transaction_text(job: ProcessingJob, external_id: str) -> str | None:
    from jobs.datatypes import stored_source
    from jobs.datatypes.embedding import transaction_text

    if not stored_source.reads_project(job.options):
        return None
    row = Transaction.objects.filter(project_id=job.project_id, external_id=external_id).values_list(
        "description", "counterparty").first()
    if row is None:
        return None
    return transaction_text(*row) or None


TRANSACTION_FIELDS = ("external_id", "date", "amount", "currency", "account", "counterparty", "description",
                      "reference")


def project_embedding_job(project_id: str, job_id: str | None = None) -> ProcessingJob:
    """The embedding job that `find similar` for a project's stored transactions uses: the
    given one, or the project's most recently completed one with `options.source = "project"`.
    Raises NoSimilarityIndex when there is none."""
    from jobs.datatypes import stored_source

    jobs = ProcessingJob.objects.filter(project_id=project_id, data_type__in=_embedding_types(),
                                        completed_at__isnull=False).exclude(status=JobStatus.CANCELLED)
    if job_id is not None:
        job = jobs.filter(id=job_id).first()
        if job is None or not stored_source.reads_project(job.options):
            raise NoSimilarityIndex(f"job {job_id} is not a finished embedding job over this project's stored "
                                    "transactions")
        return job
    for job in jobs.order_by("-completed_at")[:20]:
        if stored_source.reads_project(job.options):
            return job
    raise NoSimilarityIndex("this project has no finished embedding job over its stored transactions: submit "
                            "one (data_type embedding, options.source=project) first")


def _embedding_types() -> list[str]:
    from jobs.datatypes.registry import registry

    return [name for name, spec in registry().items() if getattr(spec.handler, "results_kind", "") == "embeddings"]


def similar_transactions(project_id: str, external_id: str, *, k: int = 10, job_id: str | None = None) -> dict:
    """`find similar` for one of a project's stored transactions: the `k` stored transactions
    whose texts are most like its own, best first, with their ledger fields.

    Raises LookupError when the project has no such transaction, NoSimilarityIndex when it
    has no embedding job over its stored transactions (or `job_id` is not one)."""
    query = Transaction.objects.filter(project_id=project_id, external_id=external_id).values(
        *TRANSACTION_FIELDS).first()
    if query is None:
        raise LookupError(f"no stored transaction with id {external_id!r} in this project")
    job = project_embedding_job(project_id, job_id)
    similar = [row for row in find_similar(job, external_id=external_id, k=k + 1)
               if row["external_id"] != external_id][:k]
    ledger = {row["external_id"]: row for row in Transaction.objects.filter(
        project_id=project_id, external_id__in=[row["external_id"] for row in similar]).values(*TRANSACTION_FIELDS)}
    results = []
    for row in similar:
        fields = ledger.get(row["external_id"], {})
        results.append(plain_row({**{key: fields.get(key) for key in TRANSACTION_FIELDS}, **row}))
    return {"transaction": plain_row(query), "job_id": str(job.id), "count": len(results), "results": results}


WIDE_COLUMNS = frozenset({"explanation", "text", "description"})


def _shown(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list) else plain(value)


def results_preview(job: ProcessingJob, limit: int = 25) -> dict | None:
    """What the job page shows: the first rows, their total, and the summary's counts."""
    source = source_for(job)
    if source is None:
        return None
    rows = source.rows(job, {})
    summary = job.summary or {}
    counts = [{"label": key.replace("_", " ").capitalize(), "counts": summary[key]}
              for key in source.summary_counts if isinstance(summary.get(key), dict)]
    columns = source.page_columns or source.columns
    return {
        "kind": source.kind, "title": source.title, "columns": columns,
        "rows": [[{"value": _shown(row[c]), "wide": c in WIDE_COLUMNS, "column": c} for c in columns]
                 for row in rows[:limit]],
        "total": rows.count(), "counts": counts, "limit": limit,
        "benford": [summary[key] for key in ("benford_first_digit", "benford_first_two_digits")
                    if isinstance(summary.get(key), dict)],
    }
