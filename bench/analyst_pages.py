"""Server time of the analyst's pages on a large project: `.venv/bin/python bench/analyst_pages.py`.

Issue 21 sets a server-time target for every page on a project the size of its defaults
(`--transactions`, `--findings`). This builds such a project in its own PostgreSQL database
(`zenith_bench_pages`, recreated; override with BENCH_PAGES_DATABASE_URL, whose name must start
with `zenith_bench`) and Redis database 10 (BENCH_REDIS_URL), then times each page through
Django's test client (the view, its queries and the template; no network, no gunicorn), each
`--repeat` times after one warm-up, and prints the median, the 95th percentile, the slowest run
and the number of queries. Results also go to bench/out/analyst-pages.json.

The rows are written with INSERT ... SELECT over generate_series (the pipeline's own speed is
`bench/run.py`'s business): a stored ledger of `--transactions` rows from one transaction job
(its batches cut by the CSV fast path, so the transaction page computes an exact line), an
analysis job with `--findings` findings and a working set of every transaction (the amounts
chart reads it), a reconciliation job of `--lines` statement lines (96 % matched, 1 % ambiguous
with two candidates, 3 % unmatched), an entity job of `--names` names, and a finished embedding
job over the stored transactions without vectors (find-similar at this size is offered on
request, not run: the transaction page is timed in that state; the request itself compares
every vector and is not a page load).

Timed pages: the ledger's and the analysis job's pages (the charts once computed and once from
the cache), the reconciliation view's four lists on their first page and a late page (by
cursor), the entity groups' first and a late page, a transaction page and the redirect by row id.
The findings browser of issue 21 (jobs/web/findings.py) is timed by its own pages' URLs when
`--findings-pages` is given.

Nothing here is part of `make test`. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
from bench.benchdb import recreate_database  # noqa: E402

os.environ["DATABASE_URL"] = os.environ.get("BENCH_PAGES_DATABASE_URL",
                                            "postgres://postgres@127.0.0.1:5432/zenith_bench_pages")
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("ZENITH_LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenith.settings")

PROJECT = "bench-pages"


def _job(project, data_type: str, total: int, **fields):
    from django.utils import timezone

    from jobs.models import ProcessingJob

    now = timezone.now()
    return ProcessingJob.objects.create(
        project=project, data_type=data_type, status="completed", total_items=total, items_processed=total,
        total_batches=max(1, -(-total // 500)), batches_completed=max(1, -(-total // 500)), created_at=now,
        started_at=now, completed_at=now, batch_config={"size": 500}, **fields)


def build(args) -> dict:
    """The large project; returns the ids the timings need."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from jobs.datatypes.analysis import analysis_summary
    from jobs.datatypes.reconciliation import reconciliation_summary
    from jobs.engine.payloads import CODEC_CSV_ZLIB
    from jobs.forensics import benford
    from jobs.forensics.redflags import AnalysisConfig
    from jobs.models import Batch, BatchPayload, Project

    started = time.perf_counter()
    user = get_user_model().objects.create_user("bench", password="bench")
    project = Project.objects.create(id=PROJECT, name="Bench pages", created_by=user)
    project.members.add(user, through_defaults={"role": "owner"})
    n, step = args.transactions, max(1, args.transactions // max(1, args.lines))
    details = {"format": "csv", "encoding": "utf-8", "delimiter": ",", "header_row": 1, "mode": "canonical",
               "columns": ["id", "date", "amount", "currency", "account", "counterparty", "description", "reference"],
               "mapping": {f: f for f in ["id", "date", "amount", "currency", "account", "counterparty",
                                          "description", "reference"]},
               "dates": [{"column": "date", "day_first": None, "pattern": "YYYY-MM-DD"}],
               "numbers": [{"column": "amount", "decimal_separator": ".", "currency_symbols": []}]}
    ledger = _job(project, "transaction", n, input_name="ledger.csv", input_format="csv", import_details=details,
                  input_checksum=hashlib.sha256(b"bench ledger").hexdigest(), summary={"stored": n})
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs_transaction (project_id, external_id, date, amount, currency, account, counterparty, "
            "description, reference, job_id, item_index, created_at) "
            "SELECT %s, 'TX' || lpad(i::text, 8, '0'), DATE '2025-01-01' + (i %% 365), "
            "round((exp(random() * 9) + 1)::numeric, 2), (ARRAY['EUR','USD','GBP'])[1 + i %% 3], "
            "'ACC-' || (1000 + i %% 60), 'Vendor ' || (i %% 500) || ' Ltd', "
            "'Invoice ' || i || ' ' || (ARRAY['services','goods','fees','rent'])[1 + i %% 4], "
            "CASE WHEN i %% 5 < 3 THEN 'REF' || i ELSE '' END, %s, i - 1, now() "
            "FROM generate_series(1, %s) AS i", [PROJECT, ledger.id, n])
        batches = Batch.objects.bulk_create([
            Batch(job=ledger, number=k + 1, status="succeeded", start_index=k * 500, item_count=min(500, n - k * 500),
                  processed_count=min(500, n - k * 500)) for k in range(-(-n // 500))], batch_size=2000)
        BatchPayload.objects.bulk_create([BatchPayload(batch=b, codec=CODEC_CSV_ZLIB, data=b"") for b in batches],
                                         batch_size=2000)
    print(f"  {n:,} transactions in {time.perf_counter() - started:.0f} s", flush=True)

    analysis = _job(project, "analysis", n, options={"source": "project"},
                    import_details={"source": "project", "transactions": n})
    finding_step = max(1, n // max(1, args.findings))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs_analysisrecord (job_id, item_index, external_id, date, amount, currency, account, "
            "counterparty, counterparty_key, reference) SELECT %s, item_index, external_id, date, amount, currency, "
            "account, counterparty, lower(counterparty), reference FROM jobs_transaction WHERE job_id = %s",
            [analysis.id, ledger.id])
        cursor.execute(
            "INSERT INTO jobs_finding (job_id, rule, severity, item_index, external_id, date, amount, currency, "
            "account, counterparty, score, related_external_id, explanation, details) "
            "SELECT %s, (ARRAY['round_amount','just_below_threshold','weekend_holiday','duplicate_payment',"
            "'account_outlier'])[1 + (item_index / %s) %% 5], (ARRAY['low','medium','high'])[1 + item_index %% 3], "
            "item_index, external_id, date, amount, currency, account, counterparty, NULL, "
            "CASE WHEN (item_index / %s) %% 5 = 3 THEN 'TX' || lpad(greatest(item_index, 1)::text, 8, '0') "
            "ELSE '' END, 'bench finding', '{}' FROM jobs_transaction WHERE job_id = %s AND item_index %% %s = 0",
            [analysis.id, finding_step, finding_step, ledger.id, finding_step])
    counts_first: dict[str, int] = {}
    counts_two: dict[str, int] = {}
    from jobs.models import Transaction

    for amount in Transaction.objects.filter(job=ledger).values_list("amount", flat=True).iterator(chunk_size=20000):
        digits = benford.leading_digits(amount)
        if digits is None:
            continue
        counts_first[digits[0]] = counts_first.get(digits[0], 0) + 1
        counts_two[digits[1]] = counts_two.get(digits[1], 0) + 1
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_transaction, jobs_analysisrecord, jobs_finding")
    analysis.summary = analysis_summary(analysis.id, {"records": n, "benford_first": counts_first,
                                                      "benford_first_two": counts_two}, AnalysisConfig())
    analysis.save(update_fields=["summary"])
    print(f"  {args.findings:,} findings in {time.perf_counter() - started:.0f} s", flush=True)

    reconciliation = _job(project, "reconciliation", args.lines, input_name="statement.csv", input_format="csv",
                          import_details=details)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs_statementmatch (job_id, item_index, line_id, date, amount, currency, counterparty, "
            "reference, description, outcome, stage, transaction_id, matched_external_id, confidence, candidates, "
            "explanation) SELECT %s, s.n - 1, 'BS' || lpad(s.n::text, 8, '0'), t.date, t.amount, t.currency, "
            "upper(t.counterparty), t.reference, 'SEPA CREDIT TRANSFER', "
            "CASE WHEN s.n %% 100 = 0 THEN 'ambiguous' WHEN s.n %% 100 < 4 THEN 'unmatched' ELSE 'matched' END, "
            "CASE WHEN s.n %% 100 >= 4 THEN (CASE WHEN t.reference <> '' THEN 'reference' ELSE 'amount_date' END) "
            "ELSE '' END, CASE WHEN s.n %% 100 >= 4 THEN t.id END, "
            "CASE WHEN s.n %% 100 >= 4 THEN t.external_id ELSE '' END, 0.9, "
            "CASE WHEN s.n %% 100 = 0 THEN jsonb_build_array(t.external_id, "
            "'TX' || lpad((t.item_index + 2)::text, 8, '0')) ELSE '[]'::jsonb END, 'bench' "
            "FROM generate_series(1, %s) AS s(n) JOIN jobs_transaction t ON t.job_id = %s "
            "AND t.item_index = (s.n - 1) * %s",
            [reconciliation.id, args.lines, ledger.id, step])
    with connection.cursor() as cursor:  # as the finalizer does before a summary (jobs.services.finalizer)
        cursor.execute("ANALYZE jobs_transaction, jobs_statementmatch")
    reconciliation.summary = reconciliation_summary(reconciliation)
    reconciliation.save(update_fields=["summary"])
    print(f"  {args.lines:,} statement lines in {time.perf_counter() - started:.0f} s", flush=True)

    entities = _job(project, "entity", args.names, input_name="names.csv", input_format="csv")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs_entityname (job_id, item_index, external_id, name, normalized_name, entity_key, "
            "entity_type, country) SELECT %s, n - 1, 'E' || n, "
            "'Company ' || (n / 3) || (ARRAY[' Ltd', ' Limited', ' LTD.'])[1 + n %% 3], 'company ' || (n / 3), "
            "substr(md5('e' || (n / 3)), 1, 16), '', 'GB' FROM generate_series(1, %s) AS n", [entities.id, args.names])
        # Each distinct name (n / 3) and its group: three names to a group, every other group.
        cursor.execute(
            "INSERT INTO jobs_entitygroupmember (job_id, normalized_name, entity_key, group_key, group_size) "
            "SELECT %s, 'company ' || m, substr(md5('e' || m), 1, 16), CASE WHEN (m / 3) %% 2 = 0 "
            "THEN substr(md5('g' || (m / 3)), 1, 16) ELSE substr(md5('e' || m), 1, 16) END, "
            "CASE WHEN (m / 3) %% 2 = 0 THEN 3 ELSE 1 END FROM generate_series(0, %s / 3) AS m",
            [entities.id, args.names])
    entities.summary = {"names": args.names, "distinct_names": args.names // 3}
    entities.save(update_fields=["summary"])
    _job(project, "embedding", n, options={"source": "project"}, summary={"texts": n})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    return {"ledger": ledger, "analysis": analysis, "reconciliation": reconciliation, "entities": entities,
            "step": step, "finding_step": finding_step}


def timed(client, url: str, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = client.get(url)
    if first.status_code not in (200, 302):
        raise SystemExit(f"{url}: HTTP {first.status_code}")
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        runs.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    runs.sort()
    return {"url": url, "median_ms": round(statistics.median(runs), 1),
            "p95_ms": round(runs[min(len(runs) - 1, int(len(runs) * 0.95))], 1), "max_ms": round(runs[-1], 1),
            "queries": len(queries.captured_queries)}


def pages(ids: dict, findings_pages: bool) -> list[tuple[str, str]]:
    from jobs.models import Transaction
    from jobs.selectors import keyset

    recon, entities = ids["reconciliation"], ids["entities"]
    late_line = keyset.encode((int(recon.total_items * 0.9),))
    late_ledger = keyset.encode(("2025-12-01", "TX00000000"))
    late_names = keyset.encode((1, "8" * 16, 0))  # the second half of the names without near-duplicates
    # A transaction half way down the ledger with a statement line and a finding.
    both = math.lcm(ids["step"], ids["finding_step"])
    middle = Transaction.objects.filter(job=ids["ledger"], item_index=(ids["ledger"].total_items // 2) // both
                                        * both).values_list("external_id", "pk").first()
    listed = [
        ("ledger job page", f"/jobs/{ids['ledger'].id}/"),
        ("analysis job page, charts from the cache", f"/jobs/{ids['analysis'].id}/"),
        ("reconciliation: matched, first page", f"/jobs/{recon.id}/reconciliation/"),
        ("reconciliation: matched, late page", f"/jobs/{recon.id}/reconciliation/?show=matched&after={late_line}"),
        ("reconciliation: ambiguous, first page", f"/jobs/{recon.id}/reconciliation/?show=ambiguous"),
        ("reconciliation: ambiguous, late page",
         f"/jobs/{recon.id}/reconciliation/?show=ambiguous&after={late_line}"),
        ("reconciliation: unmatched lines, first page", f"/jobs/{recon.id}/reconciliation/?show=unmatched"),
        ("reconciliation: unmatched ledger rows, first page", f"/jobs/{recon.id}/reconciliation/?show=ledger"),
        ("reconciliation: unmatched ledger rows, late page",
         f"/jobs/{recon.id}/reconciliation/?show=ledger&after={late_ledger}"),
        ("entity groups, first page", f"/jobs/{entities.id}/entities/"),
        ("entity groups (every name), late page", f"/jobs/{entities.id}/entities/?all=1&after={late_names}"),
        ("transaction page (similar on request)", f"/projects/{PROJECT}/transactions/{middle[0]}/"),
        ("transaction by row id (redirect)", f"/transactions/{middle[1]}/"),
    ]
    if findings_pages:
        analysis = ids["analysis"].id
        listed += [("findings browser, first page", f"/jobs/{analysis}/findings/"),
                   ("findings browser, filtered by rule", f"/jobs/{analysis}/findings/?rule=round_amount"),
                   ("findings browser, last page", f"/jobs/{analysis}/findings/?page=last")]
    return listed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=200_000, help="statement lines of the reconciliation job")
    parser.add_argument("--names", type=int, default=100_000, help="names of the entity job")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--findings-pages", action="store_true", help="also time the findings browser")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.cache import cache
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host name is allowed; nothing else changes
    print(f"building the project in a fresh database ({args.transactions:,} transactions)", flush=True)
    recreate_database()
    cache.clear()
    ids = build(args)
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    results = []
    for name, url in pages(ids, args.findings_pages):
        results.append({"page": name, **timed(client, url, args.repeat)})
        print(f"  {name}: {results[-1]['median_ms']} ms", flush=True)
    # The analysis job's charts once computed (the cache emptied before each run), after the
    # warm-up above so that only the chart series' queries differ from the cached view.
    cold = []
    for _ in range(3):
        cache.clear()
        start = time.perf_counter()
        client.get(f"/jobs/{ids['analysis'].id}/")
        cold.append((time.perf_counter() - start) * 1000)
    results.append({"page": "analysis job page, charts computed (cache emptied)", "url": f"/jobs/{ids['analysis'].id}/",
                    "median_ms": round(statistics.median(cold), 1), "p95_ms": None, "max_ms": round(max(cold), 1),
                    "queries": None})
    print()
    print(f"| page ({args.transactions:,} transactions, {args.findings:,} findings, {args.lines:,} statement lines, "
          f"{args.names:,} names) | median ms | p95 ms | max ms | queries |")
    print("|---|---|---|---|---|")
    for row in results:
        print(f"| {row['page']} | {row['median_ms']} | {row['p95_ms'] if row['p95_ms'] is not None else ''} | "
              f"{row['max_ms']} | {row['queries'] if row['queries'] is not None else ''} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "analyst-pages.json").write_text(json.dumps(
        {"run": str(uuid.uuid4()), "sizes": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
