"""Read paths whose cost does not depend on luck: on realistic row counts, without planner
statistics, a job over a project's stored transactions reads them with one statement, not
one page query per batch whose plan depends on the table's statistics (docs/design.md, "The
SQL module"). Rows are made by PostgreSQL itself (generate_series), so the test stays quick."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Batch, Project, Transaction
from jobs.services import submit_project_transactions

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _fill(rows: dict[str, int]) -> None:
    """Rows of several projects, interleaved as concurrent uploads leave them; never analyzed."""
    table = connection.ops.quote_name(Transaction._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE")
        for project_id, count in rows.items():
            cursor.execute(
                f"INSERT INTO {table} (project_id, external_id, date, amount, currency, account, counterparty, "
                "description, reference, created_at) "
                "SELECT %s, 'T' || g, DATE '2026-01-01' + (g %% 365), (g %% 9973) + 0.5, 'EUR', 'ACC' || (g %% 13), "
                "'Vendor ' || (g %% 101), 'payment ' || g, '', now() FROM generate_series(1, %s) AS g",
                [project_id, count])


def test_it_reads_a_projects_stored_transactions_with_one_statement(redis, api_users):
    _fill({"bob-audit": 150_000, "alice-audit": 100_000})
    table = Transaction._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        job = submit_project_transactions(project=Project.objects.get(id="alice-audit"), data_type="analysis",
                                          batch_size=500)
    reads = [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]
    assert len(reads) == 1, reads
    assert (job.total_items, job.total_batches) == (100_000, 200)
    assert Batch.objects.filter(job=job).count() == 200
    first, last = (Transaction.objects.filter(project_id="alice-audit").order_by(order).values_list("id", flat=True)
                   .first() for order in ("id", "-id"))
    assert (job.import_details["first_id"], job.import_details["last_id"]) == (first, last)
