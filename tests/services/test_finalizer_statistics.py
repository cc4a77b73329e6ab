"""A job that filled a table in bulk leaves it with planner statistics: without them the
planner misjudges every query on a freshly COPYed table (docs/design.md, "The SQL module")."""

from __future__ import annotations

import pytest
from django.db import connection

from jobs.models import Project, Transaction
from jobs.services import submit_job
from tests.conftest import drain
from tests.support.factories import transaction_records

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _estimated_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def test_it_analyzes_the_tables_a_large_job_filled(redis, api_users):
    table = Transaction._meta.db_table
    with connection.cursor() as cursor:
        # A table that has never been analyzed: PostgreSQL shows -1 (no statistics).
        cursor.execute(f"TRUNCATE {connection.ops.quote_name(table)} CASCADE")
    assert _estimated_rows(table) == -1

    records = transaction_records(12_000, "S", amount=lambda i: f"{i % 500 + 1}.00")
    job = submit_job(project=Project.objects.get(id="alice-audit"), data_type="transaction", records=records,
                     batch_size=2_000)
    drain(job.id)

    assert Transaction.objects.filter(job=job).count() == 12_000
    assert _estimated_rows(table) == pytest.approx(12_000, rel=0.1)



def test_it_analyzes_before_the_summary_plans_its_queries(redis, api_users, monkeypatch):
    """A reconciliation's summary counts the ledger rows no line matched with an anti-join;
    planned on a table without statistics it probed every match once per ledger row (over
    13 minutes for 200k lines against 1M rows). The statistics come first."""
    from django.test.utils import CaptureQueriesContext

    from jobs.models import StatementMatch
    from jobs.services import finalizer

    monkeypatch.setattr(finalizer, "ANALYZE_AFTER_ROWS", 3)
    project = Project.objects.get(id="alice-audit")
    drain(submit_job(project=project, data_type="transaction",
                     records=transaction_records(6, "L", amount=lambda i: f"{i + 10}.00")).id)
    lines = [{"id": f"S{i}", "date": "2025-01-0" + str(i + 1), "amount": f"{i + 10}.00", "currency": "EUR"}
             for i in range(4)]
    job = submit_job(project=project, data_type="reconciliation", records=lines, batch_size=2)
    with CaptureQueriesContext(connection) as queries:
        drain(job.id)
    statements = [q["sql"] for q in queries.captured_queries]
    table = StatementMatch._meta.db_table
    analyze = next(i for i, sql in enumerate(statements) if sql.startswith("ANALYZE") and table in sql)
    anti_join = next(i for i, sql in enumerate(statements) if "NOT EXISTS" in sql and table in sql)
    assert analyze < anti_join
    job.refresh_from_db()
    assert job.status == "completed" and job.summary["lines"] == 4
