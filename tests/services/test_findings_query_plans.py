"""The findings browser's pages on realistic row counts (docs/design.md, "Findings and reviews"):
a page deep in a large job reads about as many rows as the first one, in every sort and
direction, with the review-state filters too. Checked on the plans PostgreSQL runs (EXPLAIN
ANALYZE of every statement a page makes), not on timings; rows are made by PostgreSQL itself
(generate_series), so the test stays quick."""

from __future__ import annotations

import functools
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Finding, FindingReview, ProcessingJob, Project
from jobs.selectors import findings as selectors
from tests.support.plans import explain, nodes

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BIG, OTHER, REVIEWED = 200_000, 100_000, 3_000
SIZE = 50


def _fill(job: ProcessingJob, count: int, offset: int = 0) -> None:
    """`count` findings of `job`: five rules, severities high 5 % / medium 35 % / low 60 %, dates
    over two years, amounts with ties, thirteen accounts."""
    table = connection.ops.quote_name(Finding._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (job_id, rule, severity, item_index, external_id, date, amount, currency, account, "
            "counterparty, score, related_external_id, explanation, details) "
            "SELECT %s, (ARRAY['round_amount','just_below_threshold','weekend_holiday','duplicate_payment',"
            "'account_outlier'])[1 + g %% 5], CASE WHEN g %% 20 = 0 THEN 'high' WHEN g %% 20 < 8 THEN 'medium' "
            "ELSE 'low' END, g, 'T' || g, DATE '2024-01-01' + (g * 7 %% 730)::int, ((g * 7919) %% 20000) * 5 + 0.5, "
            "'EUR', 'ACC' || (g %% 13), 'Vendor ' || (g %% 101), NULL, '', 'synthetic', '{}' "
            "FROM generate_series(%s::bigint, %s::bigint) AS g", [job.id, offset + 1, offset + count])


def _reviews(project: Project, job: ProcessingJob) -> None:
    """Reviews of every 60th finding's logical key (about 1.7 % of the job), a quarter of them
    reviewed twice (the later review is the current state)."""
    table = connection.ops.quote_name(FindingReview._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, rule, external_id, state, note, at, reviewer_name, job_id) "
            "SELECT %s, rule, external_id, (ARRAY['confirmed','dismissed','follow_up'])[1 + item_index / 60 %% 3], "
            "'seen', now(), 'ana', job_id FROM jobs_finding WHERE job_id = %s AND item_index %% 60 = 0 "
            "ORDER BY item_index", [project.pk, job.id])
        cursor.execute(
            f"INSERT INTO {table} (project_id, rule, external_id, state, note, at, reviewer_name, job_id) "
            "SELECT project_id, rule, external_id, 'dismissed', 'second look', now(), 'alice', job_id "
            f"FROM {table} WHERE id %% 4 = 0", [])
        cursor.execute(f"ANALYZE {connection.ops.quote_name(Finding._meta.db_table)}")
        cursor.execute(f"ANALYZE {table}")


def _page_cost(run) -> tuple[int, list[str], list[dict]]:
    """Runs `run` (one page), then EXPLAIN ANALYZEs each statement it made: (rows the scans
    read, summed over every loop and statement; the node types; the plans)."""
    with CaptureQueriesContext(connection) as captured:
        run()
    statements = [q for q in captured.captured_queries if 'FROM "jobs_finding"' in q["sql"]]
    touched, kinds, plans = 0, [], []
    for query in statements:
        # psycopg binds on the client: the captured text is the statement as the server ran it.
        plan = explain(query["sql"], buffers=True)
        plans.append(plan)
        for node in nodes(plan):
            kinds.append(node["Node Type"])
            if "Scan" in node["Node Type"] and node.get("Relation Name") == "jobs_finding":
                loops = node.get("Actual Loops", 1)
                touched += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * loops
    return touched, kinds, plans


def test_deep_pages_read_as_few_rows_as_the_first(api_users, monkeypatch):
    project = Project.objects.get(id="alice-audit")
    big = ProcessingJob.objects.create(project=project, data_type="analysis")
    other = ProcessingJob.objects.create(project=project, data_type="analysis")
    _fill(other, OTHER // 2)
    _fill(big, BIG)
    _fill(other, OTHER // 2, offset=OTHER // 2)
    _reviews(project, big)

    everything = selectors.filtered_findings(big, selectors.FindingFilters())
    report = {}
    for value, _ in selectors.SORT_CHOICES:
        sort = selectors.Sort.parse(value)
        # A cursor about three quarters of the way through the job, in this sort's order.
        deep = everything.order_by(*sort.ordering)[BIG * 3 // 4]
        cursor = selectors.encode_cursor(sort, sort.position(deep))
        page = functools.partial(selectors.findings_page, everything, sort, size=SIZE)
        first, first_kinds, _ = _page_cost(page)
        later, kinds, plans = _page_cost(functools.partial(page, after=cursor))
        back, _, _ = _page_cost(functools.partial(page, before=cursor))
        report[value] = (first, later, back)
        assert "Seq Scan" not in kinds + first_kinds and "Sort" not in kinds, (value, plans)
        # One page plus the look-ahead row, per index range walked (at most one per severity or rule).
        assert max(first, later, back) <= 6 * (SIZE + 1), (value, report[value], plans)

    # The review filters. A state few findings are in is looked up by key; a common one, and
    # "not reviewed", walk the sort's index checking each finding's latest review: a page reads
    # about a page's worth divided by the share of findings in the state, wherever it is.
    for sparse in (selectors.SPARSE_REVIEWS, 0):
        monkeypatch.setattr(selectors, "SPARSE_REVIEWS", sparse)
        for state in ("unreviewed", "confirmed", "reviewed"):
            reviewed = selectors.current_review_keys("alice-audit", "reviewed").count() / BIG
            share = {"unreviewed": 1 - reviewed, "reviewed": reviewed,
                     "confirmed": selectors.current_review_keys("alice-audit", "confirmed").count() / BIG}[state]
            for value in ("-date", "severity", "amount"):
                sort = selectors.Sort.parse(value)
                rows = selectors.filtered_findings(big, selectors.FindingFilters(review=state))
                page = selectors.findings_page(rows, sort, size=SIZE)
                for _ in range(5):  # five pages in
                    page = selectors.findings_page(rows, sort, after=page.next_cursor, size=SIZE)
                later, kinds, plans = _page_cost(functools.partial(
                    selectors.findings_page, rows, sort, after=page.next_cursor, size=SIZE))
                report[f"{state} {value} {'by key' if sparse else 'walk'}"] = (later,)
                assert "Seq Scan" not in kinds and "Hash Join" not in kinds, (state, value, plans)
                assert later <= 4 * 3 * (SIZE + 1) / share, (state, value, later, share, plans)
    print("\nrows read per page (first, deep, deep backwards):", json.dumps(report))
