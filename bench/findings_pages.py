"""Server time of the findings browser on a large analysis job: `.venv/bin/python bench/findings_pages.py`.

Builds, in its own PostgreSQL database (`zenith_bench_findings`, recreated; override with
BENCH_FINDINGS_DATABASE_URL, whose name must start with `zenith_bench`), an analysis job with
`--findings` findings among another job's (before and after it, as concurrent jobs leave them),
`--transactions` stored transactions behind them, and reviews of every `--review-every`-th
finding (a quarter reviewed twice), then times through Django's test client (the view, its
queries and its template; no network) each page once to warm up and `--repeat` times: the first
page, page 1,000 (a cursor at row 50,000, or half way on a smaller job) and the last page of
every sort, the filters, the review-state filters, a finding's page, the reviewed CSV and the
results API's `review_state`.
Prints the median, the 95th percentile, the slowest run and the queries of each; the figures
also go to bench/out/findings-pages.json.

Rows are written with INSERT ... SELECT over generate_series (the pipeline's speed is
`bench/run.py`'s business) and the tables analyzed, as the finalizer does after a large job.
Nothing here is part of `make test`. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
from bench.benchdb import recreate_database  # noqa: E402

os.environ["DATABASE_URL"] = os.environ.get("BENCH_FINDINGS_DATABASE_URL",
                                            "postgres://postgres@127.0.0.1:5432/zenith_bench_findings")
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("ZENITH_LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenith.settings")

PROJECT = "bench-findings"
PAGE = 50

FINDINGS_SQL = (
    "INSERT INTO jobs_finding (job_id, rule, severity, item_index, external_id, date, amount, currency, account, "
    "counterparty, score, related_external_id, explanation, details) "
    "SELECT %s, (ARRAY['round_amount','just_below_threshold','weekend_holiday','duplicate_payment',"
    "'account_outlier'])[1 + g %% 5], CASE WHEN g %% 20 = 0 THEN 'high' WHEN g %% 20 < 8 THEN 'medium' "
    "ELSE 'low' END, g, 'T' || g, DATE '2024-01-01' + (g * 7 %% 730)::int, ((g * 7919) %% 20000) * 5 + 0.5, "
    "'EUR', 'ACC' || (g %% 13), 'Vendor ' || (g %% 101), NULL, '', "
    "'Amount ' || (((g * 7919) %% 20000) * 5 + 0.5) || ' EUR is flagged by the bench.', '{}' "
    "FROM generate_series(%s::bigint, %s::bigint) AS g")


def build(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from jobs.models import JobStatus, ProcessingJob, Project, ProjectMembership

    started = time.perf_counter()
    user = get_user_model().objects.create_user("bench-analyst", password="bench")
    project = Project.objects.create(id=PROJECT, name="Findings bench", created_by=user)
    ProjectMembership.objects.create(project=project, user=user, role="analyst")
    done = {"status": JobStatus.COMPLETED, "total_items": args.findings, "items_processed": args.findings}
    from django.utils import timezone

    job = ProcessingJob.objects.create(project=project, data_type="analysis", completed_at=timezone.now(), **done)
    other = ProcessingJob.objects.create(project=project, data_type="analysis", completed_at=timezone.now(), **done)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs_transaction (project_id, external_id, date, amount, currency, account, counterparty, "
            "description, reference, item_index, created_at) SELECT %s, 'T' || g, DATE '2024-01-01' + "
            "(g * 7 %% 730)::int, ((g * 7919) %% 20000) * 5 + 0.5, 'EUR', 'ACC' || (g %% 13), 'Vendor ' || (g %% 101), "
            "'payment ' || g, '', g, now() FROM generate_series(1, %s::bigint) AS g", [PROJECT, args.transactions])
        half = args.other // 2
        cursor.execute(FINDINGS_SQL, [other.id, 1, half])
        cursor.execute(FINDINGS_SQL, [job.id, 1, args.findings])
        cursor.execute(FINDINGS_SQL, [other.id, half + 1, args.other])
        cursor.execute(
            "INSERT INTO jobs_findingreview (project_id, rule, external_id, state, note, at, reviewer_name, job_id) "
            "SELECT %s, rule, external_id, (ARRAY['confirmed','dismissed','follow_up'])[1 + item_index / %s %% 3], "
            "'checked by the bench', now(), 'bench-analyst', job_id FROM jobs_finding WHERE job_id = %s "
            "AND item_index %% %s = 0 ORDER BY item_index", [PROJECT, args.review_every, job.id, args.review_every])
        cursor.execute(
            "INSERT INTO jobs_findingreview (project_id, rule, external_id, state, note, at, reviewer_name, job_id) "
            "SELECT project_id, rule, external_id, 'dismissed', 'second look', now(), 'bench-analyst', job_id "
            "FROM jobs_findingreview WHERE id %% 4 = 0", [])
        for table in ("jobs_transaction", "jobs_finding", "jobs_findingreview"):
            cursor.execute(f"ANALYZE {table}")
    print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
    return {"job": job, "user": user}


def pages(job) -> list[tuple[str, str]]:
    from jobs.models import Finding
    from jobs.selectors import findings as selectors

    base = f"/jobs/{job.id}/findings/"
    everything = selectors.filtered_findings(job, selectors.FindingFilters())
    listed = []
    for value, label in selectors.SORT_CHOICES:
        sort = selectors.Sort.parse(value)
        deep = everything.order_by(*sort.ordering)[min(PAGE * 1000, job.total_items // 2) - 1]
        cursor = selectors.encode_cursor(sort, sort.position(deep))
        listed += [(f"{label}: first page", f"{base}?sort={value}"),
                   (f"{label}: page 1,000", f"{base}?sort={value}&after={cursor}"),
                   (f"{label}: last page", f"{base}?sort={value}&page=last")]
    listed += [
        ("filter rule", f"{base}?rule=duplicate_payment&sort=-date"),
        ("filter severity high", f"{base}?severity=high&sort=-amount"),
        ("filter account", f"{base}?account=ACC7&sort=-date"),
        ("filter counterparty contains", f"{base}?counterparty=Vendor+42&sort=-date"),
        ("filter amount range", f"{base}?amount_min=1000&amount_max=1500&sort=-date"),
        ("filter date range", f"{base}?date_from=2025-03-01&date_to=2025-03-31&sort=-amount"),
        ("filter all of them", f"{base}?rule=round_amount&amount_min=100&date_from=2024-06-01&account=ACC3"),
    ]
    for state in ("unreviewed", "reviewed", "confirmed", "follow_up"):
        listed.append((f"review {state}", f"{base}?review={state}&sort=-date"))
    middle = Finding.objects.filter(job=job, item_index=job.total_items // 2 // 60 * 60).order_by("id").first()
    listed += [
        ("finding page (reviewed twice)", f"{base}{middle.id}/"),
        ("reviewed CSV, filtered by rule", f"{base}reviewed.csv?rule=weekend_holiday"),
        ("results API, review_state=dismissed", f"/api/v1/batch-jobs/{job.id}/results?review_state=dismissed"),
    ]
    return listed


def timed(client, url: str, repeat: int) -> dict:
    from django.db import connection, reset_queries

    runs, queries = [], 0
    for attempt in range(repeat + 1):
        reset_queries()
        started = time.perf_counter()
        response = client.get(url)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code}")
        if attempt:
            runs.append(elapsed)
            queries = len(connection.queries)
    runs.sort()
    return {"median_ms": round(statistics.median(runs), 1), "p95_ms": round(runs[int(0.95 * (len(runs) - 1))], 1),
            "max_ms": round(runs[-1], 1), "queries": queries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=1_000_000, help="findings of the job browsed")
    parser.add_argument("--other", type=int, default=200_000, help="findings of another job around them")
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--review-every", type=int, default=60, help="review every n-th finding")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    settings.DEBUG = True  # counts queries; templates and views run as in production
    settings.ALLOWED_HOSTS = ["testserver"]
    recreate_database()
    built = build(args)
    client = Client()
    client.force_login(built["user"])
    results = {}
    print(f"{'page':58} {'median':>8} {'p95':>8} {'max':>8} {'queries':>8}")
    for name, url in pages(built["job"]):
        figures = timed(client, url, args.repeat)
        results[name] = {**figures, "url": url}
        print(f"{name:58} {figures['median_ms']:>6.1f}ms {figures['p95_ms']:>6.1f}ms {figures['max_ms']:>6.1f}ms "
              f"{figures['queries']:>8}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "findings-pages.json").write_text(json.dumps({"args": vars(args), "pages": results}, indent=1))


if __name__ == "__main__":
    main()
