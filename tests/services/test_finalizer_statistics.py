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

