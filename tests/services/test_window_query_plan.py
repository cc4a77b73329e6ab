"""A job's window is refilled in every batch's commit (jobs.sql.pick_window), so its cost must
not grow with the job: on a job of 20,000 batches with 5,000 still pending, the pick reads
about as many batch rows as it takes. Checked on the plan PostgreSQL runs (EXPLAIN ANALYZE),
on rows made by PostgreSQL itself, after ANALYZE, as the finalizer and the bench leave them."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from jobs import sql
from jobs.models import Batch, BatchStatus, ProcessingJob, Project
from tests.support.plans import explain, rows_read

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BATCHES, DONE = 20_000, 15_000


def test_it_picks_a_large_jobs_window_reading_only_the_batches_it_takes(api_users):
    project = Project.objects.get(id="alice-audit")
    job = ProcessingJob.objects.create(project=project, data_type="transaction")
    other = ProcessingJob.objects.create(project=project, data_type="transaction")
    table = connection.ops.quote_name(Batch._meta.db_table)
    with connection.cursor() as cursor:
        for owner in (other, job):
            cursor.execute(
                f"INSERT INTO {table} (job_id, number, status, start_index, item_count, attempts, rerun_scope, "
                "rq_job_id, worker_name, processed_count, failed_count, skipped_count, last_error, stats) "
                "SELECT %s, g, CASE WHEN g <= %s THEN 'succeeded' ELSE 'pending' END, (g - 1) * 100, 100, 0, '', '', "
                "'', 0, 0, 0, '', '{}' FROM generate_series(1, %s) AS g", [owner.id, DONE, BATCHES])
        cursor.execute(f"ANALYZE {table}")

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic(), CaptureQueriesContext(connection) as captured:
        picked = sql.pick_window(job.id, 8, None, None)
        raise Undo  # only the statement's text is wanted here: EXPLAIN ANALYZE runs it below
    assert sorted(number for _, number, _ in picked) == list(range(DONE + 1, DONE + 9))
    statement = captured.captured_queries[-1]["sql"]
    plan = explain(statement)
    assert plan["Actual Rows"] == 8 or Batch.objects.filter(job=job, status=BatchStatus.QUEUED).count() == 8
    read = rows_read(plan, Batch._meta.db_table)
    # 8 pending batches counted, picked and marked: a few dozen rows, not the 5,000 pending.
    assert read <= 100, f"the pick read {read} batch rows: {json.dumps(plan)[:3000]}"
    more = sql.pick_window(job.id, 16, None, None)
    assert sorted(number for _, number, _ in more) == list(range(DONE + 9, DONE + 17))
    assert Batch.objects.filter(job=job, status=BatchStatus.QUEUED).count() == 16
