"""`analysis` records: transactions screened for red flags (see `jobs.forensics.redflags`).

A record has the fields of a `transaction` record and is validated the same way. What runs
where, and why:

- **Per batch** (validate / persist): the per-record rules (round amounts, just below a
  threshold, weekend or holiday postings), whose findings are stored with the batch; the
  Benford digit counts, added to the batch's statistics; and a compact copy of each record
  in `AnalysisRecord`, the job's working set.
- **Job-wide** (summarize, in the finalizer): duplicate payments and per-account outliers,
  which compare a record with records of other batches. They read the job's own records
  from `AnalysisRecord` in sorted streams (memory bounded by one account or one
  counterparty-amount run, not by the job) and store their findings; Benford's tests add
  up the batches' digit counts. The finalizer runs once per job (and again only after a
  retry re-opens it), and job-wide findings are replaced, never added twice.

What is screened: by default the job's own records (submit a ledger file as `analysis`: the
job is then a reproducible unit, same file, same findings). With `options.source =
"project"` (API: no `items`; CLI: `submit_job --type analysis --project P --source project`)
the job screens the project's stored transactions instead, as they are when it is submitted:
its batches carry id ranges of the `Transaction` table, not copies (`jobs.datatypes.stored_source`),
and everything else (rules, working set, finalizer) is the same. Stored rows are taken as
stored: the parsing options below apply to records only.

Options: see `jobs.forensics.redflags` (thresholds, threshold_margin, round_unit, round_min,
weekend_days, holiday_calendar, holidays, duplicate_window_days, outlier_z,
outlier_min_records, outlier_scale, rules) and `benford_min_amount` (default 10); plus the
transaction parsing options (day_first, date_format, decimal_separator, default_currency).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.db.models import Count

from jobs.datatypes import stored_source
from jobs.datatypes.base import BatchContext, Handler, RecordRejected, sum_stats
from jobs.datatypes.text import normalize_name
from jobs.datatypes.transaction import TransactionHandler
from jobs.forensics import benford, redflags
from jobs.forensics.redflags import AnalysisConfig, Flag, Posting
from jobs.models import AnalysisRecord, Finding
from jobs.sql import insert_new

RECORD_FIELDS = ["job", "item_index", "external_id", "date", "amount", "currency", "account", "counterparty",
                 "counterparty_key", "reference"]
_POSTING_FIELDS = ["item_index", "external_id", "date", "amount", "currency", "account", "counterparty",
                   "counterparty_key", "reference"]


@functools.lru_cache(maxsize=64)
def _config(options_json: str) -> AnalysisConfig:
    return AnalysisConfig.from_options(json.loads(options_json))


def config_for(options: dict | None) -> AnalysisConfig:
    """The job's analysis configuration; a bad option rejects every record with its reason."""
    try:
        return _config(json.dumps(options or {}, sort_keys=True, default=str))
    except ValueError as exc:
        raise RecordRejected("invalid_options", str(exc), "options") from None


@dataclasses.dataclass(frozen=True)
class AnalysisRow:
    external_id: str
    date: dt.date
    amount: Decimal
    currency: str
    account: str
    counterparty: str
    reference: str
    flags: tuple[Flag, ...]


class AnalysisHandler(Handler):
    key_field = "id"
    results_kind = "findings"
    bulk_loaded = (AnalysisRecord, Finding)
    _parser = TransactionHandler()

    #: `options.source = "project"` screens the project's stored transactions (jobs.datatypes.stored_source)
    accepts_project_source = True

    def validate(self, record: dict, ctx: BatchContext) -> AnalysisRow:
        config = config_for(ctx.options)
        if stored_source.is_stored(record):
            external_id, date, amount, currency, account, counterparty, reference = (
                record["id"], record["date"], record["amount"], record["currency"], record["account"],
                record["counterparty"], record["reference"])
        else:
            external_id, date, amount, currency, account, counterparty, _, reference = self._parser.validate(
                record, ctx)
        flags = tuple(redflags.record_flags(date, amount, currency, config))
        return AnalysisRow(external_id, date, amount, currency, account, counterparty, reference, flags)

    def persist(self, rows: list[tuple[int, AnalysisRow]], ctx: BatchContext) -> dict:
        if not rows:  # also when bad options rejected every record: nothing to store
            return {"records": 0}
        config = config_for(ctx.options)
        records = [(ctx.job_id, index, r.external_id, r.date, r.amount, r.currency, r.account, r.counterparty,
                    normalize_name(r.counterparty)[:255], r.reference) for index, r in rows]
        insert_new(AnalysisRecord, RECORD_FIELDS, records, ["job", "item_index"], "item_index")
        findings = [_finding(ctx.job_id, index, r.external_id, r.date, r.amount, r.currency, r.account,
                             r.counterparty, flag)
                    for index, r in rows for flag in r.flags]
        Finding.objects.bulk_create(findings, batch_size=1000, ignore_conflicts=True)
        first: Counter[str] = Counter()
        first_two: Counter[str] = Counter()
        for _, r in rows:
            digits = benford.leading_digits(r.amount, config.benford_min_amount)
            if digits:
                first[digits[0]] += 1
                first_two[digits[1]] += 1
        return {"records": len(rows), "findings": dict(Counter(f.rule for f in findings)),
                "benford_first": dict(first), "benford_first_two": dict(first_two)}

    def summarize(self, job: Any, batch_stats: Iterable[dict]) -> dict:
        totals = sum_stats(batch_stats)
        try:
            config = AnalysisConfig.from_options(job.options)
        except ValueError as exc:
            return {"records": totals.get("records", 0), "error": f"invalid options: {exc}"}
        Finding.objects.filter(job_id=job.id, rule__in=redflags.JOB_WIDE_RULES).delete()
        if redflags.DUPLICATE_PAYMENT in config.rules:
            ordered = AnalysisRecord.objects.filter(job_id=job.id).exclude(counterparty_key="").order_by(
                "counterparty_key", "currency", "amount", "date", "item_index")
            _store(job.id, redflags.duplicate_payments(_postings(ordered), config))
        if redflags.ACCOUNT_OUTLIER in config.rules:
            ordered = AnalysisRecord.objects.filter(job_id=job.id).order_by("account", "currency", "item_index")
            _store(job.id, _outliers(_postings(ordered), config))
        return analysis_summary(job.id, totals, config)


def _finding(job_id, index: int, external_id: str, date: dt.date, amount: Decimal, currency: str, account: str,
             counterparty: str, flag: Flag) -> Finding:
    return Finding(job_id=job_id, rule=flag.rule, severity=flag.severity, item_index=index, external_id=external_id,
                   date=date, amount=amount, currency=currency, account=account, counterparty=counterparty,
                   score=flag.score, related_external_id=flag.related_external_id, explanation=flag.explanation,
                   details=flag.details)


def _postings(queryset) -> Iterator[Posting]:
    for values in queryset.values_list(*_POSTING_FIELDS).iterator(chunk_size=5000):
        yield Posting(*values)


def _outliers(postings: Iterator[Posting], config: AnalysisConfig) -> Iterator[tuple[Posting, Flag]]:
    group: list[Posting] = []
    for posting in postings:
        if group and (posting.account, posting.currency) != (group[0].account, group[0].currency):
            yield from redflags.account_outliers(group, config)
            group = []
        group.append(posting)
    if group:
        yield from redflags.account_outliers(group, config)


def _store(job_id, flagged: Iterator[tuple[Posting, Flag]], chunk: int = 2000) -> None:
    pending: list[Finding] = []
    for posting, flag in flagged:
        pending.append(_finding(job_id, posting.item_index, posting.external_id, posting.date, posting.amount,
                                posting.currency, posting.account, posting.counterparty, flag))
        if len(pending) >= chunk:
            Finding.objects.bulk_create(pending, ignore_conflicts=True)
            pending = []
    Finding.objects.bulk_create(pending, ignore_conflicts=True)


def analysis_summary(job_id, totals: dict, config: AnalysisConfig) -> dict:
    """Counts by rule and severity (from the stored findings, so exact), and Benford's tests."""
    by_rule = {rule: 0 for rule in sorted(config.rules)}
    by_severity = {"high": 0, "medium": 0, "low": 0}
    for row in Finding.objects.filter(job_id=job_id).values("rule", "severity").annotate(n=Count("id")):
        by_rule[row["rule"]] = by_rule.get(row["rule"], 0) + row["n"]
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + row["n"]
    flagged = Finding.objects.filter(job_id=job_id).values("item_index").distinct().count()
    return {
        "records": totals.get("records", 0),
        "findings": sum(by_rule.values()),
        "flagged_records": flagged,
        "findings_by_rule": by_rule,
        "findings_by_severity": by_severity,
        "benford_first_digit": benford.benford_test(totals.get("benford_first", {}), digits=1),
        "benford_first_two_digits": benford.benford_test(totals.get("benford_first_two", {}), digits=2),
    }
