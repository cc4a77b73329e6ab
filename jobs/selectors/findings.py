"""Read side of the findings browser and of reviews: filters, sorts, keyset pages, one finding
with its transaction and review history, and the reviewed set for the CSV export. No writes here
(reviews are written by jobs.services.reviews).

Pages are keysets, never offsets (docs/design.md, "Findings and reviews"): a page starts after
(or ends before) the row the reader last saw, named by a cursor holding that row's sort columns,
the last of which is unique (the id, or the item index within a rule). Each sort has an index
that leads with the job and goes on with the sort's columns (jobs.models.domain.Finding), so a
page deep in a large job reads about as many index entries as the first one, and findings
written between two pages do not shift them.

A page after a cursor is read as a few index ranges, each an equality on the leading columns and
an inequality on the next one: for date then id, the rows of the cursor's date with a later id,
then the rows of later dates. A sort that starts with a few named values (severity, rule) takes
one range per value, in the value order (high, medium, low; rules by name). The database starts
each walk at the cursor instead of filtering every earlier row out, whatever the statistics say.

Review state: a finding's reviews are those of its project with its rule and external id
(jobs.models.reviews); its state is the latest one's, "unreviewed" without any.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery

from jobs.errors import NotFound, ResultFilterError
from jobs.forensics import redflags
from jobs.models import AnalysisRecord, Finding, FindingReview, ProcessingJob, ReviewState, Severity, Transaction
from zenith.infra import csv_safety

UNREVIEWED = "unreviewed"
REVIEWED = "reviewed"
#: the review filter's values: no review yet, any review, or a current state
REVIEW_FILTERS = (UNREVIEWED, REVIEWED, *ReviewState.values)
REVIEW_FILTER_LABELS = {UNREVIEWED: "Not reviewed", REVIEWED: "Reviewed (any state)",
                        **dict(ReviewState.choices)}

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
#: how far a filtered count goes before it says "more than"
COUNT_CAP = 500
NOTE_MAX_CHARS = 4000
#: up to this many findings in a review state are looked up by key, not found by a walk
SPARSE_REVIEWS = 5000
LOOKUP_CHUNK = 500

# What each rule looks for, for the finding page; each finding's own explanation says why it fired.
RULE_GUIDE = {
    redflags.ROUND_AMOUNT: (
        "Round amount",
        "Flags amounts that are an exact multiple of the job's round unit. Genuine invoices rarely come to round "
        "sums: tax, unit prices and fees leave odd amounts. Round ones are typical of estimates, manual adjustments, "
        "cash withdrawals and fabricated payments."),
    redflags.JUST_BELOW_THRESHOLD: (
        "Just below a threshold",
        "Flags amounts within a small margin below a reporting or approval threshold. Payments kept just under a "
        "limit can have been split or sized to avoid review."),
    redflags.WEEKEND_HOLIDAY: (
        "Weekend or holiday posting",
        "Flags entries posted on a weekend day or on a holiday of the job's calendar, when offices and payment "
        "systems are closed: worth a look at who made them and why."),
    redflags.DUPLICATE_PAYMENT: (
        "Possible duplicate payment",
        "Flags a payment with the same amount, currency and counterparty (names compared after normalisation) "
        "as an earlier one within the job's window of days. The later payment is flagged and names the earlier."),
    redflags.ACCOUNT_OUTLIER: (
        "Unusual amount for the account",
        "Flags an amount far from what its account usually carries, by a robust z-score (median and median "
        "absolute deviation of the account's amounts in the same currency), above the job's cut-off."),
}


# --- filters -----------------------------------------------------------------------------------

def _decimal(name: str, value: str) -> Decimal:
    try:
        number = Decimal(value.strip().replace(",", ""))
    except InvalidOperation:
        raise ResultFilterError(f"{name} must be a number, e.g. 1000 or 999.95") from None
    if not number.is_finite():
        raise ResultFilterError(f"{name} must be a number, e.g. 1000 or 999.95")
    return number


def _date(name: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ResultFilterError(f"{name} must be a date written YYYY-MM-DD") from None


def _choice(name: str, value: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ResultFilterError(f"{name} must be one of: {', '.join(allowed)}")
    return value


@dataclasses.dataclass(frozen=True)
class FindingFilters:
    """The findings browser's filters, as the query string gives them (so a view can be
    bookmarked). Empty means "any"."""

    rule: str = ""
    severity: str = ""
    account: str = ""
    counterparty: str = ""
    external_id: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    review: str = ""

    #: query-string names, in the order links write them
    NAMES = ("rule", "severity", "account", "counterparty", "external_id", "amount_min", "amount_max",
             "date_from", "date_to", "review")

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> FindingFilters:
        """Reads the filters; a bad value raises ResultFilterError naming the parameter."""
        raw = {name: (params.get(name) or "").strip() for name in cls.NAMES}
        found = cls(
            rule=_choice("rule", raw["rule"], redflags.ALL_RULES) if raw["rule"] else "",
            severity=_choice("severity", raw["severity"], Severity.values) if raw["severity"] else "",
            account=raw["account"][:128], counterparty=raw["counterparty"][:255],
            external_id=raw["external_id"][:128],
            amount_min=_decimal("amount_min", raw["amount_min"]) if raw["amount_min"] else None,
            amount_max=_decimal("amount_max", raw["amount_max"]) if raw["amount_max"] else None,
            date_from=_date("date_from", raw["date_from"]) if raw["date_from"] else None,
            date_to=_date("date_to", raw["date_to"]) if raw["date_to"] else None,
            review=_choice("review", raw["review"], REVIEW_FILTERS) if raw["review"] else "",
        )
        if found.amount_min is not None and found.amount_max is not None and found.amount_min > found.amount_max:
            raise ResultFilterError("amount_min must not be larger than amount_max")
        if found.date_from and found.date_to and found.date_from > found.date_to:
            raise ResultFilterError("date_from must not be after date_to")
        return found

    def query(self) -> list[tuple[str, str]]:
        """The set filters as query-string pairs, for links that keep them."""
        pairs = []
        for name in self.NAMES:
            value = getattr(self, name)
            if value not in (None, ""):
                pairs.append((name, value.isoformat() if isinstance(value, dt.date) else str(value)))
        return pairs

    @property
    def active(self) -> bool:
        return bool(self.query())


def filter_by_review(findings: QuerySet, state: str, project_id: str, *, per_finding: bool = True) -> QuerySet:
    """Findings whose review state is `state` (one of REVIEW_FILTERS): their latest review's.

    `per_finding` checks each finding with one probe of the review index, written as a scalar
    subquery PostgreSQL cannot turn into a join: a page walks its sort's index and stops when it
    is full instead of joining every finding of the job. Without it the check is an EXISTS the
    planner may join, which suits counting all of them (the results API's count)."""
    _choice("review", state, REVIEW_FILTERS)
    reviews = FindingReview.objects.filter(project_id=project_id, rule=OuterRef("rule"),
                                           external_id=OuterRef("external_id"))
    if per_finding:
        findings = findings.alias(review_state=Subquery(reviews.order_by("-id").values("state")[:1]))
        if state == UNREVIEWED:
            return findings.filter(review_state__isnull=True)
        if state == REVIEWED:
            return findings.filter(review_state__isnull=False)
        return findings.filter(review_state=state)
    if state == UNREVIEWED:
        return findings.filter(~Exists(reviews))
    if state == REVIEWED:
        return findings.filter(Exists(reviews))
    newer = FindingReview.objects.filter(project_id=OuterRef("project_id"), rule=OuterRef("rule"),
                                         external_id=OuterRef("external_id"), id__gt=OuterRef("id"))
    return findings.filter(Exists(reviews.filter(state=state).filter(~Exists(newer))))


def filtered_findings(job: ProcessingJob, filters: FindingFilters) -> QuerySet[Finding]:
    """The job's findings that pass `filters` (unordered)."""
    findings = Finding.objects.filter(job=job)
    if filters.rule:
        findings = findings.filter(rule=filters.rule)
    if filters.severity:
        findings = findings.filter(severity=filters.severity)
    if filters.account:
        findings = findings.filter(account=filters.account)
    if filters.counterparty:
        findings = findings.filter(counterparty__icontains=filters.counterparty)
    if filters.external_id:
        findings = findings.filter(external_id=filters.external_id)
    if filters.amount_min is not None:
        findings = findings.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        findings = findings.filter(amount__lte=filters.amount_max)
    if filters.date_from:
        findings = findings.filter(date__gte=filters.date_from)
    if filters.date_to:
        findings = findings.filter(date__lte=filters.date_to)
    if filters.review:
        findings = by_review_state(findings, job, filters.review)
    return findings


def current_review_keys(project_id: str, state: str) -> QuerySet:
    """(rule, external id) of the project's findings whose latest review has `state` (any
    state for REVIEWED)."""
    newer = FindingReview.objects.filter(project_id=OuterRef("project_id"), rule=OuterRef("rule"),
                                         external_id=OuterRef("external_id"), id__gt=OuterRef("id"))
    latest = FindingReview.objects.filter(project_id=project_id).filter(~Exists(newer))
    if state != REVIEWED:
        latest = latest.filter(state=state)
    return latest.order_by().values_list("rule", "external_id")


def by_review_state(findings: QuerySet, job: ProcessingJob, state: str, *, per_finding: bool = True) -> QuerySet:
    """The job's `findings` in review state `state`, by the cheaper of two routes, chosen on
    the number of findings in that state rather than left to the planner's estimates: up to
    SPARSE_REVIEWS of them are looked up by key (index (job, external_id)); more are common
    enough to be checked finding by finding (filter_by_review, `per_finding` as there)."""
    if state != UNREVIEWED:
        keys = set(current_review_keys(job.project_id, state)[:SPARSE_REVIEWS + 1])
        if len(keys) <= SPARSE_REVIEWS:
            external_ids = sorted({external_id for _, external_id in keys})
            ids = []
            for start in range(0, len(external_ids), LOOKUP_CHUNK):
                ids += [pk for pk, rule, external_id in Finding.objects.filter(
                    job=job, external_id__in=external_ids[start:start + LOOKUP_CHUNK]).order_by().values_list(
                    "id", "rule", "external_id") if (rule, external_id) in keys]
            return findings.filter(id__in=ids)
    return filter_by_review(findings, state, job.project_id, per_finding=per_finding)


@contextlib.contextmanager
def quick_reads() -> Iterator[None]:
    """A transaction whose statements PostgreSQL does not JIT-compile. The browser's statements
    read a page's worth of rows, but the planner prices a per-finding review check over the
    whole job, and compiling it then takes longer than running it."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


def summary_count(job: ProcessingJob, filters: FindingFilters) -> int | None:
    """How many findings pass `filters`, from the finished job's summary (exact: the finalizer
    counts the stored findings) when they filter by rule or severity alone; else None."""
    summary = (job.summary or {}) if job.is_finalized else {}
    given = [name for name, _ in filters.query()]
    if not given:
        found = summary.get("findings")
    elif given == ["rule"]:
        found = (summary.get("findings_by_rule") or {}).get(filters.rule, 0)
    elif given == ["severity"]:
        found = (summary.get("findings_by_severity") or {}).get(filters.severity, 0)
    else:
        return None
    return found if isinstance(found, int) and summary else None


def count_up_to(findings: QuerySet, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(how many, whether there are more than `cap`): a filtered count that stops at `cap`, so
    it reads about `cap` matching rows however many there are."""
    found = findings.order_by()[:cap + 1].count()
    return min(found, cap), found > cap


# --- sorts and keyset pages --------------------------------------------------------------------

def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not a whole number")
    return value


def _iso_date(value: Any) -> dt.date:
    return dt.date.fromisoformat(_text(value))


def _amount(value: Any) -> Decimal:
    return Decimal(_text(value))


@dataclasses.dataclass(frozen=True)
class SortKey:
    name: str
    #: the columns the key orders by, the last one unique within the job together with the
    #: others (so every finding has one position); each an index's columns after the job
    columns: tuple[str, ...]
    #: how a cursor's value of each column is read back
    parsers: tuple[Callable[[Any], Any], ...]
    first_label: str
    last_label: str
    #: the first column's values in sort order, for a key that starts with a few named values
    values: tuple[str, ...] = ()


SORT_KEYS = {key.name: key for key in (
    # Within a severity, by date: the index (job, severity, date, id) is then the only path
    # that gives the order, so the planner never walks the primary key instead.
    SortKey("severity", ("severity", "date", "id"), (_text, _iso_date, _whole), "Severity, high first",
            "Severity, low first", (Severity.HIGH, Severity.MEDIUM, Severity.LOW)),
    SortKey("date", ("date", "id"), (_iso_date, _whole), "Date, oldest first", "Date, newest first"),
    SortKey("amount", ("amount", "id"), (_amount, _whole), "Amount, smallest first", "Amount, largest first"),
    # The unique (job, rule, item_index) already orders a rule's findings: no index of its own.
    SortKey("rule", ("rule", "item_index"), (_text, _whole), "Rule, A to Z", "Rule, Z to A",
            tuple(sorted(redflags.ALL_RULES))),
)}
DEFAULT_SORT = "severity"
#: the sort choices the page offers, (value, label)
SORT_CHOICES = [(value, (key.last_label if value.startswith("-") else key.first_label))
                for value in ("severity", "-severity", "-date", "date", "-amount", "amount", "rule", "-rule")
                for key in [SORT_KEYS[value.lstrip("-")]]]


@dataclasses.dataclass(frozen=True)
class Sort:
    key: SortKey
    descending: bool = False

    @classmethod
    def parse(cls, value: str | None) -> Sort:
        value = (value or DEFAULT_SORT).strip()
        key = SORT_KEYS.get(value.lstrip("-"))
        if key is None:
            raise ResultFilterError(f"sort must be one of: {', '.join(v for v, _ in SORT_CHOICES)}")
        return cls(key, value.startswith("-"))

    @property
    def value(self) -> str:
        return ("-" if self.descending else "") + self.key.name

    @property
    def ordering(self) -> list[str]:
        """The order_by() of the sort."""
        return [("-" if self.descending else "") + column for column in self.key.columns]

    def position(self, finding: Finding) -> tuple:
        return tuple(getattr(finding, column) for column in self.key.columns)


def encode_cursor(sort: Sort, position: tuple) -> str:
    shown = [v.isoformat() if isinstance(v, dt.date) else str(v) if isinstance(v, Decimal) else v for v in position]
    raw = json.dumps([sort.key.name, *shown], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: Sort, cursor: str) -> tuple:
    """The position a cursor names; ResultFilterError when it is not one of this sort's."""
    key = sort.key
    try:
        if len(cursor) > 1024:
            raise ValueError("too long")
        name, *values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if name != key.name or len(values) != len(key.columns):
            raise ValueError("another sort")
        position = tuple(parse(value) for parse, value in zip(key.parsers, values, strict=True))
        if key.values and position[0] not in key.values:
            raise ValueError("not a value of the key")
        return position
    except (ValueError, TypeError, InvalidOperation, binascii.Error, UnicodeDecodeError):
        raise ResultFilterError("This page link does not name a position in this list (it may be from another "
                                "sort); start again from the first page.") from None


def walk(findings: QuerySet, sort: Sort, *, after: tuple | None, limit: int,
         values: tuple[str, ...] | None = None) -> list[Finding]:
    """Up to `limit` findings in the sort's order, strictly after position `after` (from the
    start when None). Each query below is one index range (see the module docstring): after
    (a, b, c) come the rows with (a, b) and a later c, then those with a and a later b, then
    those with a later a; a first column of named values takes each later value in turn."""
    columns, order = sort.key.columns, sort.ordering
    later = "lt" if sort.descending else "gt"
    found: list[Finding] = []

    def take(rows: QuerySet, depth: int) -> None:
        if len(found) < limit:
            found.extend(rows.order_by(*order[depth:])[:limit - len(found)])

    def after_position(rows: QuerySet, last_depth: int) -> None:
        for depth in range(len(columns) - 1, last_depth - 1, -1):
            equal = {columns[i]: after[i] for i in range(depth)}
            take(rows.filter(**equal, **{f"{columns[depth]}__{later}": after[depth]}), depth)

    if sort.key.values:
        ordered = list(reversed(sort.key.values) if sort.descending else sort.key.values)
        allowed = set(values if values is not None else sort.key.values)
        if after is not None:
            if after[0] in allowed:
                after_position(findings, 1)
            ordered = ordered[ordered.index(after[0]) + 1:]
        for value in ordered:
            if value in allowed:
                take(findings.filter(**{columns[0]: value}), 1)
        return found
    if after is None:
        take(findings, 0)
    else:
        after_position(findings, 0)
    return found


@dataclasses.dataclass
class FindingsPage:
    rows: list[Finding]
    #: cursor for the page after this one, None on the last page
    next_cursor: str | None
    #: cursor for the page before this one, None on the first page
    previous_cursor: str | None


def findings_page(findings: QuerySet, sort: Sort, *, after: str | None = None, before: str | None = None,
                  last: bool = False, size: int = DEFAULT_PAGE_SIZE,
                  values: tuple[str, ...] | None = None) -> FindingsPage:
    """One page of `findings` in `sort`'s order: the first, the one after cursor `after`, the
    one before cursor `before`, or the last. `values` narrows a named-values sort (severity,
    rule) to the values a filter leaves."""
    if before or last:
        backwards = Sort(sort.key, not sort.descending)
        position = decode_cursor(sort, before) if before else None
        rows = walk(findings, backwards, after=position, limit=size + 1, values=values)
        more = len(rows) > size
        rows = rows[:size]
        rows.reverse()
        if before and not more and len(rows) < size:
            # Back at the start with a short page: show a full first page instead.
            return findings_page(findings, sort, size=size, values=values)
        return FindingsPage(rows, encode_cursor(sort, sort.position(rows[-1])) if rows and before else None,
                            encode_cursor(sort, sort.position(rows[0])) if rows and more else None)
    position = decode_cursor(sort, after) if after else None
    rows = walk(findings, sort, after=position, limit=size + 1, values=values)
    more = len(rows) > size
    rows = rows[:size]
    return FindingsPage(rows, encode_cursor(sort, sort.position(rows[-1])) if more else None,
                        encode_cursor(sort, sort.position(rows[0])) if rows and after else None)


def sort_values(sort: Sort, filters: FindingFilters) -> tuple[str, ...] | None:
    """For a named-values sort, the values its filter leaves (None: all of them)."""
    chosen = {"severity": filters.severity, "rule": filters.rule}.get(sort.key.name)
    return (chosen,) if chosen else None


# --- reviews -----------------------------------------------------------------------------------

Key = tuple[str, str]  # (rule, external id): a finding within its project


def reviews_of(project_id: str, keys: Iterable[Key]) -> dict[Key, list[FindingReview]]:
    """The reviews of each (rule, external id) of the project, oldest first (the last is the
    current one); a key without reviews is absent."""
    keys = set(keys)
    if not keys:
        return {}
    found: dict[Key, list[FindingReview]] = {}
    rows = FindingReview.objects.filter(project_id=project_id, rule__in={rule for rule, _ in keys},
                                        external_id__in={external_id for _, external_id in keys}).order_by("id")
    for review in rows:
        key = (review.rule, review.external_id)
        if key in keys:
            found.setdefault(key, []).append(review)
    return found


def review_history(finding: Finding, project_id: str | None = None) -> list[FindingReview]:
    """Every review of the finding's logical finding (any job of its project), newest first."""
    project_id = project_id or ProcessingJob.objects.filter(id=finding.job_id).values_list(
        "project_id", flat=True).get()
    return list(FindingReview.objects.filter(project_id=project_id, rule=finding.rule,
                                             external_id=finding.external_id).order_by("-id"))


def latest_review(project_id: str, rule: str, external_id: str) -> FindingReview | None:
    return (FindingReview.objects.filter(project_id=project_id, rule=rule, external_id=external_id)
            .order_by("-id").first())


@dataclasses.dataclass
class ReviewedFinding:
    finding: Finding
    reviews: list[FindingReview]  # oldest first

    @property
    def current(self) -> FindingReview | None:
        return self.reviews[-1] if self.reviews else None


def with_reviews(project_id: str, findings: list[Finding]) -> list[ReviewedFinding]:
    reviews = reviews_of(project_id, ((f.rule, f.external_id) for f in findings))
    return [ReviewedFinding(f, reviews.get((f.rule, f.external_id), [])) for f in findings]


# --- one finding -------------------------------------------------------------------------------

def job_finding(job: ProcessingJob, finding_id: int) -> Finding:
    finding = Finding.objects.filter(job=job, id=finding_id).first()
    if finding is None:
        raise NotFound("Finding not found.")
    return finding


def finding_by_key(job: ProcessingJob, rule: str, external_id: str) -> Finding:
    """The job's finding of `rule` on transaction `external_id` (the first, should the job's
    input hold that id twice)."""
    finding = Finding.objects.filter(job=job, rule=rule, external_id=external_id).order_by("item_index").first()
    if finding is None:
        raise NotFound(f"This job has no {rule} finding on transaction {external_id!r}.")
    return finding


TRANSACTION_FIELDS = ("external_id", "date", "amount", "currency", "account", "counterparty", "description",
                      "reference", "created_at")
RECORD_FIELDS = ("external_id", "date", "amount", "currency", "account", "counterparty", "reference")


def stored_values(job: ProcessingJob, external_id: str, item_index: int | None = None) -> dict | None:
    """What Zenith holds about a transaction: the project's stored row, or, for a job that
    screened a file's own records, the record as the job read it. None when neither exists."""
    if not external_id:
        return None
    row = Transaction.objects.filter(project_id=job.project_id, external_id=external_id).values(
        *TRANSACTION_FIELDS).first()
    if row is not None:
        return {"source": "stored", "values": row}
    records = AnalysisRecord.objects.filter(job=job, external_id=external_id)
    if item_index is not None:
        records = records.filter(item_index=item_index)
    record = records.order_by("item_index").values(*RECORD_FIELDS).first()
    return {"source": "record", "values": record} if record else None


def finding_detail(job: ProcessingJob, finding_id: int) -> dict:
    """The finding page: the finding, its transaction's values (and those of the transaction
    it names, for a duplicate), what its rule looks for, the job's other findings on the same
    transaction, and its review history (newest first)."""
    finding = job_finding(job, finding_id)
    title, guide = RULE_GUIDE.get(finding.rule, (finding.rule.replace("_", " ").capitalize(), ""))
    siblings = list(Finding.objects.filter(job=job, external_id=finding.external_id).exclude(id=finding.id)
                    .order_by("rule", "item_index")[:20])
    return {
        "finding": finding, "rule_title": title, "rule_guide": guide,
        "details": sorted((finding.details or {}).items()),
        "transaction": stored_values(job, finding.external_id, finding.item_index),
        "related": stored_values(job, finding.related_external_id) if finding.related_external_id else None,
        "siblings": siblings,
        "history": review_history(finding, job.project_id),
    }


# --- the reviewed set as CSV -------------------------------------------------------------------

REVIEWED_COLUMNS = ("finding_id", "external_id", "rule", "severity", "date", "amount", "currency", "account",
                    "counterparty", "related_external_id", "explanation", "review_state", "review_note",
                    "reviewer", "reviewed_at", "reviews")


def reviewed_csv_rows(job: ProcessingJob, filters: FindingFilters, *, history: bool = False,
                      chunk: int = LOOKUP_CHUNK) -> Iterator[list[str]]:
    """The header, then one row per reviewed finding of the job that passes `filters` (its
    current review), or with `history` one row per review, oldest first; by transaction id,
    then rule. Read from the project's reviews and looked up by key, so the export costs what
    the reviewed set does, however many findings the job has. Every cell goes through
    zenith.infra.csv_safety: notes and uploaded text cannot open as formulas."""
    yield list(REVIEWED_COLUMNS)
    state = filters.review if filters.review not in ("", UNREVIEWED) else REVIEWED
    others = filtered_findings(job, dataclasses.replace(filters, review=""))
    keys: set[Key] = set()
    previous = None
    for key in current_review_keys(job.project_id, state).order_by("external_id", "rule").iterator(chunk_size=2000):
        if len(keys) >= chunk and key[1] != previous:  # a transaction's keys stay in one chunk
            yield from _reviewed_chunk(job, others, keys, history)
            keys = set()
        keys.add(key)
        previous = key[1]
    yield from _reviewed_chunk(job, others, keys, history)


def _reviewed_chunk(job: ProcessingJob, findings: QuerySet, keys: set[Key], history: bool) -> Iterator[list[str]]:
    if not keys:
        return
    rows = findings.filter(external_id__in={external_id for _, external_id in keys}).order_by(
        "external_id", "rule", "item_index")
    yield from _reviewed_rows(job, [f for f in rows if (f.rule, f.external_id) in keys], history)


def _reviewed_rows(job: ProcessingJob, findings: list[Finding], history: bool) -> Iterator[list[str]]:
    for item in with_reviews(job.project_id, findings):
        if not item.reviews:
            continue  # reviewed state filtered in SQL; a review cannot be deleted
        f = item.finding
        for review in (item.reviews if history else [item.current]):
            values = (f.id, f.external_id, f.rule, f.severity, f.date.isoformat(), f.amount, f.currency, f.account,
                      f.counterparty, f.related_external_id, f.explanation, review.state, review.note,
                      review.reviewer_name, review.at.isoformat(), len(item.reviews))
            yield csv_safety.row(values)
