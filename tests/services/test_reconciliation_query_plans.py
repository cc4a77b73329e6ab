"""A reconciliation batch's two statements on a ledger PostgreSQL has no statistics for yet, as
right after a bulk load (docs/design.md, "Reconciliation"): the candidates are read by one
index descent per (day, amount range) window, never by a scan of the ledger, and the ledger
rows the job matched already are found among tens of thousands of ids with the array compared
by hash, not element by element. Checked on the plans PostgreSQL runs (EXPLAIN ANALYZE) and on
the rows returned, not on timings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from jobs import sql
from jobs.datatypes.reconciliation import Ledger, search_windows
from jobs.forensics.matching import Line, MatchParams
from jobs.models import MatchOutcome, ProcessingJob, Project, StatementMatch, Transaction
from tests.support.plans import explain, nodes, rows_read

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROWS = 200_000  # a year of about 550 rows a day
START = dt.date(2025, 1, 1)


def _ledger(project: Project) -> None:
    table = connection.ops.quote_name(Transaction._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, external_id, date, amount, currency, account, counterparty, "
            "description, reference, created_at, currency_inferred) "
            "SELECT %s, 'T' || g, DATE '2025-01-01' + (g %% 365), ((g * 7919) %% 500000) / 100.0 + 1, 'EUR', "
            "'ACC', 'Vendor ' || (g %% 97), '', 'INV-' || g, now(), false FROM generate_series(1, %s) AS g",
            [project.pk, ROWS])


def test_it_reads_candidates_by_window_and_finds_taken_rows_by_hash(api_users):
    project = Project.objects.get(id="alice-audit")
    _ledger(project)
    params = MatchParams()
    lines = [Line(n, f"L{n}", START + dt.timedelta(days=40 + n % 3), Decimal(100 + 37 * n) / 10, "EUR",
                  "INV-77" if n == 0 else "", "") for n in range(300)]
    windows = search_windows(lines, params)
    days, lows, highs = (list(column) for column in zip(*windows, strict=True))
    statement = sql._ledger_candidates_sql(False)
    values = {"project": project.pk, "account": None, "days": days, "lows": lows, "highs": highs,
              "references": ["INV-77"]}
    with connection.cursor() as cursor:
        plan = explain(cursor.cursor.mogrify(statement, values))  # the statement as the server runs it

    ledger = Ledger.load(project.pk, lines, params)
    expected = set(Transaction.objects.filter(project=project, reference="INV-77").values_list("id", flat=True))
    for line in lines:
        low, high = params.search_range(line.amount)
        expected |= set(Transaction.objects.filter(
            project=project, date__gte=line.date - dt.timedelta(days=params.search_days),
            date__lte=line.date + dt.timedelta(days=params.search_days), amount__gte=low, amount__lte=high,
        ).values_list("id", flat=True))
    assert set(ledger.ids()) == expected and len(expected) > 1000

    scans = [node for node in nodes(plan) if node.get("Relation Name") == "jobs_transaction"]
    assert scans and not any(node["Node Type"] == "Seq Scan" for node in scans), plan
    read = rows_read(plan, "jobs_transaction")
    shapes = [(node["Node Type"], node.get("Index Name"), node["Actual Rows"], node.get("Actual Loops"))
              for node in scans]
    assert read <= 2 * len(expected), (read, len(expected), shapes)

    # The job's matches so far: a fifth of the candidates, in a table without statistics.
    job = ProcessingJob.objects.create(project=project, data_type="reconciliation")
    ids = ledger.ids()
    StatementMatch.objects.bulk_create([
        StatementMatch(job=job, item_index=n, line_id=f"S{n}", date=START, amount=Decimal(1), currency="EUR",
                       outcome=MatchOutcome.MATCHED, transaction_id=tx) for n, tx in enumerate(ids[::5])])
    taken = sql.matched_transactions(job.id, ids)
    assert taken == {tx: f"S{n}" for n, tx in enumerate(ids[::5])}
    # The array has the column's type, so PostgreSQL can hash it (an int4[] against the bigint
    # column was compared element by element: 0.5-1 s a batch).
    statement = sql._matched_transactions_sql()
    assert statement.endswith("= ANY(%s::bigint[])")
