"""`reconciliation` records: bank-statement lines matched against the project's ledger (the
`Transaction` rows that `transaction` jobs stored), by `jobs.forensics.matching`.

A line has `id, date, amount, currency` and optional `reference, counterparty, description`
(when the counterparty is empty, the description stands in for it, as banks often put the
payee there). Options: the matching tolerances of `MatchParams` (amount_tolerance,
date_window_days, fuzzy_amount_pct, fuzzy_date_window_days, min_name_similarity,
ambiguity_margin, max_candidates, invert_sign), `ledger_account` (only ledger rows of this
account are candidates), and the transaction parsing options.

Per batch (persist): the batch's candidate ledger rows are read in a few queries (by
reference, and by amount and date range), every line is matched, and lines of the batch
never share a transaction. Transactions already matched by earlier batches of the job are
not offered again. Job-wide (summarize): batches that ran at the same time may have matched
one transaction twice; the stronger claim keeps it and the other line is matched again.
The summary gives counts by outcome and stage, the match rate, and the ledger transactions
in the statement's period that no line matched.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
import json
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, Max, Min, OuterRef, QuerySet

from jobs import sql
from jobs.datatypes.base import BatchContext, Handler, RecordRejected
from jobs.datatypes.fields import optional_text, parse_amount, parse_currency, parse_date, require_text
from jobs.datatypes.text import normalize_name
from jobs.forensics import matching
from jobs.forensics.matching import Candidate, Line, MatchParams, MatchResult
from jobs.models import MatchOutcome, StatementMatch, Transaction


@functools.lru_cache(maxsize=64)
def _params(options_json: str) -> MatchParams:
    return MatchParams.from_options(json.loads(options_json))


def params_for(options: dict | None) -> MatchParams:
    try:
        return _params(json.dumps(options or {}, sort_keys=True, default=str))
    except ValueError as exc:
        raise RecordRejected("invalid_options", str(exc), "options") from None


@dataclasses.dataclass(frozen=True)
class StatementLine:
    line: Line
    counterparty: str
    reference: str
    description: str


class ReconciliationHandler(Handler):
    key_field = "id"
    results_kind = "matches"
    bulk_loaded = (StatementMatch,)

    def validate(self, record: dict, ctx: BatchContext) -> StatementLine:
        options = ctx.options
        params_for(options)
        line_id = require_text(record, "id", 128)
        date = parse_date(record.get("date"), day_first=options.get("day_first"),
                          date_format=options.get("date_format"))
        amount = parse_amount(record.get("amount"), decimal_separator=options.get("decimal_separator"))
        currency = parse_currency(record.get("currency"), default=options.get("default_currency"))
        reference = optional_text(record, "reference", 128)
        counterparty = optional_text(record, "counterparty", 255)
        description = optional_text(record, "description", 2000)
        key = normalize_name(counterparty or description)[:255]
        return StatementLine(Line(0, line_id, date, amount, currency, reference, key), counterparty, reference,
                             description)

    def persist(self, rows: list[tuple[int, StatementLine]], ctx: BatchContext) -> dict:
        if not rows:  # also when bad options rejected every line: nothing to match
            return {"lines": 0}
        params = params_for(ctx.options)
        lines = [dataclasses.replace(r.line, item_index=index) for index, r in rows]
        ledger = Ledger.load(ctx.project_id, lines, params, ctx.options.get("ledger_account"))
        ctx.checkpoint()
        taken = sql.matched_transactions(ctx.job_id, ledger.ids())
        results = matching.match_lines(lines, ledger.candidates_for, params, taken)
        details = {index: r for index, r in rows}
        StatementMatch.objects.bulk_create(
            [_match_row(ctx.job_id, line, details[line.item_index], results[line.item_index]) for line in lines],
            batch_size=1000, ignore_conflicts=True)
        return {"lines": len(lines), "outcomes": dict(Counter(r.outcome for r in results.values())),
                "stages": dict(Counter(r.stage or "none" for r in results.values() if r.outcome == "matched"))}

    def summarize(self, job: Any, batch_stats: Iterable[dict]) -> dict:
        try:
            params = MatchParams.from_options(job.options)
        except ValueError as exc:
            return {"error": f"invalid options: {exc}"}
        rematched = resolve_cross_batch_conflicts(job, params)
        return reconciliation_summary(job, rematched)


def _match_row(job_id, line: Line, detail: StatementLine, result: MatchResult) -> StatementMatch:
    return StatementMatch(
        job_id=job_id, item_index=line.item_index, line_id=line.line_id, date=line.date, amount=line.amount,
        currency=line.currency, counterparty=detail.counterparty, reference=detail.reference,
        description=detail.description, outcome=result.outcome, stage=result.stage,
        transaction_id=result.candidate.id if result.candidate else None,
        matched_external_id=result.candidate.external_id if result.candidate else "",
        confidence=result.confidence, candidates=list(result.candidates), explanation=result.explanation)


# A ledger names the same counterparties over and over: each batch loads tens of thousands of
# candidates but a few hundred distinct names, so their keys are computed once per worker.
_counterparty_key = functools.lru_cache(maxsize=50_000)(normalize_name)


class Ledger:
    """The ledger rows that could match a set of lines, indexed for quick lookup."""

    def __init__(self, rows: list[Candidate], params: MatchParams):
        self.params = params
        self.by_reference: dict[str, list[Candidate]] = {}
        for row in rows:
            reference = matching.normalize_reference(row.reference)
            if reference:
                self.by_reference.setdefault(reference, []).append(row)
        self.by_amount = sorted(rows, key=lambda c: (c.amount, c.id))
        self.amounts = [c.amount for c in self.by_amount]
        self.rows = rows

    @classmethod
    def load(cls, project_id: str, lines: list[Line], params: MatchParams, account: str | None = None) -> Ledger:
        """Candidates for `lines`: the ledger rows within a line's search window (its days, its
        amount range), or bearing its reference as written, upper- or lower-cased."""
        references = sorted({variant for line in lines if line.reference
                             for variant in (line.reference, line.reference.upper(), line.reference.lower())})
        found: dict[int, Candidate] = {}
        for values in sql.ledger_candidates(project_id=project_id, windows=search_windows(lines, params),
                                            references=references, account=account):
            if values[0] not in found:
                found[values[0]] = Candidate(*values[:6], _counterparty_key(values[6] or ""))
        return cls(list(found.values()), params)

    def ids(self) -> list[int]:
        return [row.id for row in self.rows]

    def candidates_for(self, line: Line) -> list[Candidate]:
        low, high = self.params.search_range(line.amount)
        window = self.params.search_days
        start = bisect.bisect_left(self.amounts, low)
        end = bisect.bisect_right(self.amounts, high)
        near = [c for c in self.by_amount[start:end] if abs((c.date - line.date).days) <= window]
        reference = matching.normalize_reference(line.reference)
        if reference:
            seen = {c.id for c in near}
            near.extend(c for c in self.by_reference.get(reference, []) if c.id not in seen)
        return near


def search_windows(lines: Iterable[Line], params: MatchParams) -> list[tuple[dt.date, Decimal, Decimal]]:
    """(day, lowest amount, highest amount) windows that hold every candidate of `lines`: each
    day of a line's search window with its amount range, ranges of one day merged where they
    overlap. A statement's lines cluster on a few days with overlapping ranges, so a batch of
    300 lines asks for far fewer windows than 300 x 15 days. Each day is named, not a date
    range: on the (project, date, amount) index a day is a descent that reads only the rows in
    range, where a date range read every row of the window and filtered."""
    by_day: dict[dt.date, list[tuple[Decimal, Decimal]]] = {}
    span = range(-params.search_days, params.search_days + 1)
    for line in lines:
        amounts = params.search_range(line.amount)
        for offset in span:
            by_day.setdefault(line.date + dt.timedelta(days=offset), []).append(amounts)
    windows = []
    for day, ranges in sorted(by_day.items()):
        ranges.sort()
        low, high = ranges[0]
        for next_low, next_high in ranges[1:]:
            if next_low > high:
                windows.append((day, low, high))
                low = next_low
            high = max(high, next_high)
        windows.append((day, low, high))
    return windows


def resolve_cross_batch_conflicts(job: Any, params: MatchParams) -> int:
    """Batches that ran concurrently may each have matched the same transaction; the stronger
    claim keeps it, the other lines are matched again without it. Returns how many lines were
    matched again. Runs inside the finalizer's transaction."""
    contested = list(StatementMatch.objects.filter(job_id=job.id, outcome=MatchOutcome.MATCHED)
                     .values("transaction_id").annotate(n=Count("id")).filter(n__gt=1)
                     .values_list("transaction_id", flat=True))
    rematched = 0
    account = (job.options or {}).get("ledger_account")
    for tx_id in contested:
        claims = list(StatementMatch.objects.filter(job_id=job.id, outcome=MatchOutcome.MATCHED,
                                                    transaction_id=tx_id).order_by("item_index"))
        stored = {row.item_index: _stored_result(row) for row in claims}
        winner = min(stored, key=lambda index: (stored[index].rank, index))
        for row in claims:
            if row.item_index == winner:
                continue
            line = Line(row.item_index, row.line_id, row.date, row.amount, row.currency, row.reference,
                        normalize_name(row.counterparty or row.description)[:255])
            ledger = Ledger.load(job.project_id, [line], params, account)
            taken = dict(StatementMatch.objects.filter(
                job_id=job.id, outcome=MatchOutcome.MATCHED, transaction_id__in=ledger.ids()).exclude(
                id=row.id).values_list("transaction_id", "line_id"))
            result = matching.match_lines([line], ledger.candidates_for, params, taken)[row.item_index]
            StatementMatch.objects.filter(id=row.id).update(
                outcome=result.outcome, stage=result.stage,
                transaction_id=result.candidate.id if result.candidate else None,
                matched_external_id=result.candidate.external_id if result.candidate else "",
                confidence=result.confidence, candidates=list(result.candidates), explanation=result.explanation)
            rematched += 1
    return rematched


def _stored_result(row: StatementMatch) -> MatchResult:
    candidate = Candidate(row.transaction_id, row.matched_external_id, row.date, row.amount, row.currency, "", "")
    return MatchResult(row.outcome, row.stage, candidate, row.confidence, tuple(row.candidates), row.explanation)


def reconciliation_summary(job: Any, rematched: int = 0) -> dict:
    """Counts by outcome and stage, the match rate, and the ledger rows of the statement's
    period (and currencies, and `ledger_account`) that no line matched."""
    lines = StatementMatch.objects.filter(job_id=job.id)
    by_outcome = {outcome: 0 for outcome in MatchOutcome.values}
    for row in lines.values("outcome").annotate(n=Count("id")):
        by_outcome[row["outcome"]] = row["n"]
    by_stage = {row["stage"]: row["n"] for row in lines.filter(outcome=MatchOutcome.MATCHED)
                .values("stage").annotate(n=Count("id"))}
    total = sum(by_outcome.values())
    summary = {
        "lines": total, "outcomes": by_outcome, "matched_by_stage": by_stage,
        "match_rate": round(by_outcome[MatchOutcome.MATCHED] / total, 4) if total else None,
        "rematched_after_conflicts": rematched,
    }
    period = lines.aggregate(first=Min("date"), last=Max("date"))
    if period["first"]:
        summary["currencies"] = sorted(lines.order_by().values_list("currency", flat=True).distinct())
        ledger = period_ledger(job, period["first"], period["last"], currencies=summary["currencies"])
        unmatched = unmatched_ledger(job, ledger)
        summary["period"] = [period["first"].isoformat(), period["last"].isoformat()]
        summary["ledger_transactions_in_period"] = ledger.count()
        summary["ledger_unmatched_in_period"] = unmatched.count()
        summary["ledger_unmatched_sample"] = list(unmatched.order_by("date", "external_id")
                                                  .values_list("external_id", flat=True)[:20])
    return summary


def period_ledger(job: Any, first: dt.date, last: dt.date, *,
                  currencies: list[str] | None = None) -> QuerySet[Transaction]:
    """The project's ledger rows a statement covers: dated from `first` to `last` (the period
    of its lines), in the currencies of its lines (`currencies`, as the summary lists them, or
    read from the lines), and of `ledger_account` when the job names one. The summary counts
    them and the reconciliation page lists them: one definition."""
    if currencies is None:
        currencies = StatementMatch.objects.filter(job_id=job.id).values("currency").distinct()
    ledger = Transaction.objects.filter(project_id=job.project_id, date__gte=first, date__lte=last,
                                        currency__in=currencies)
    account = (job.options or {}).get("ledger_account")
    return ledger.filter(account=account) if account else ledger


def unmatched_ledger(job: Any, ledger: QuerySet[Transaction]) -> QuerySet[Transaction]:
    """The rows of `ledger` that no line of the job matched (an anti-join on the matches'
    (job, transaction) index, so a page of them reads only the rows it walks past)."""
    matched = StatementMatch.objects.filter(job_id=job.id, outcome=MatchOutcome.MATCHED, transaction_id=OuterRef("pk"))
    return ledger.filter(~Exists(matched))

