"""The entity groups page on realistic row counts (docs/design.md, "Entity groups"): the job's
groups are kept once per distinct name, and a page reads the names of the groups it shows, not
every name of the job, on the first page or a late one. Checked on the plans PostgreSQL runs
(EXPLAIN ANALYZE of every statement a page makes), not on timings. The names are stored and
grouped by the entity handler's own steps (a batch's `persist`, the finalizer's `summarize`)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.datatypes.base import BatchContext
from jobs.datatypes.entity import EntityHandler
from jobs.management import sample_data
from jobs.models import EntityGroupMember, EntityName, ProcessingJob, Project
from jobs.selectors import analyst
from jobs.selectors.results import entity_names
from jobs.sql import analyze
from tests.support.plans import explain, rows_read

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NAMES, REPEATS, BATCH, SIZE = 60_000, 15, 5_000, 200


def _store(job: ProcessingJob) -> EntityHandler:
    handler = EntityHandler()
    # The sample's names (as varied as it makes them), each read REPEATS times: a large job
    # repeats its names far more than a small sample does.
    sample, _ = sample_data.entity_names(NAMES // REPEATS, seed=7)
    records = [{**record, "id": f"{record['id']}-{n}"} for n in range(REPEATS) for record in sample]
    for start in range(0, NAMES, BATCH):
        ctx = BatchContext(job_id=job.id, project_id=job.project_id, batch_id=start // BATCH,
                           batch_number=start // BATCH, data_type="entity", options={}, attempt=1)
        rows = [(start + i, handler.validate(record, ctx)) for i, record in enumerate(records[start:start + BATCH])]
        handler.persist(rows, ctx)
    analyze([EntityName])  # as the finalizer does before the summary
    return handler


def _names_read(run) -> tuple[int, list[dict]]:
    """Runs `run` (one page), then EXPLAIN ANALYZEs each statement it made on the names:
    (name rows the scans read, over every loop and statement; the plans)."""
    with CaptureQueriesContext(connection) as captured:
        run()
    read, plans = 0, []
    for query in captured.captured_queries:
        if 'FROM "jobs_entityname"' in query["sql"]:
            plans.append(explain(query["sql"]))
            read += rows_read(plans[-1], "jobs_entityname")
    return read, plans


def _rows_of_groups(job: ProcessingJob, groups: list[dict]) -> int:
    return entity_names(job=job).filter(group_key__in=[group["key"] for group in groups]).count()


def test_it_groups_per_distinct_name_and_pages_read_only_their_groups(api_users):
    job = ProcessingJob.objects.create(project=Project.objects.get(id="alice-audit"), data_type="entity")
    handler = _store(job)
    members = EntityGroupMember.objects.filter(job=job)
    distinct = EntityName.objects.filter(job=job).values("normalized_name").distinct().count()
    # The batches stored one ungrouped member per distinct name, whatever the batch.
    assert members.count() == distinct and not members.exclude(group_size=1).exists()

    summary = handler.summarize(job, [])

    assert summary["names"] == NAMES and summary["distinct_names"] == distinct
    assert members.filter(group_size__gt=1).count() == summary["names_in_groups"] > 0
    # Every name shows its distinct name's group; a group's names share its key and size.
    shown = {(row.normalized_name, row.group_key, row.group_size) for row in entity_names(job=job)}
    assert shown == set(members.values_list("normalized_name", "group_key", "group_size"))
    head = summary["largest_groups"][0]
    assert set(entity_names(job=job).filter(group_key=head["key"]).values_list("group_size", flat=True)) == {
        members.filter(group_key=head["key"]).count()}

    first, plans = _names_read(lambda: analyst.entity_groups(job=job, size=SIZE))
    page, groups = analyst.entity_groups(job=job, size=SIZE)
    first_groups = _rows_of_groups(job, groups)
    for _ in range(10):
        page, _ = analyst.entity_groups(job=job, size=SIZE, after=page.next_cursor)
    late, late_plans = _names_read(lambda: analyst.entity_groups(job=job, size=SIZE, after=page.next_cursor))
    _, late_groups = analyst.entity_groups(job=job, size=SIZE, after=page.next_cursor)
    # The names of the groups shown (each is sorted whole by input order), the look-ahead and
    # the "continues" probes; never the job's names.
    assert first <= first_groups + 2 * SIZE < NAMES // 4, (first, first_groups, plans)
    assert late <= _rows_of_groups(job, late_groups) + 2 * SIZE < NAMES // 4, (late, late_plans)
