"""The reconciliation's candidate query on a 1M-row ledger: `.venv/bin/python bench/candidates.py`.

Issue 20 measured 45 statement lines/s reconciling 100k lines against a 1M-row ledger, and
traced it to the query that loads each batch's candidates (jobs.datatypes.reconciliation,
`Ledger.load`): one range of amounts and dates per line, OR-ed. This times that query alone,
through the product's own `Ledger.load`, on a ledger made by PostgreSQL (generate_series,
amounts spread like real ones over four orders of magnitude, a year of dates, three
currencies) in its own database (`zenith_bench_candidates`, recreated; override with
BENCH_CANDIDATES_DATABASE_URL, whose name must start with `zenith_bench`), after ANALYZE as
the finalizer leaves a ledger. Lines are ledger rows moved as banks move them (a day or two
later, a small fee off), `--chunks` chunks of `LINES_PER_QUERY`.

Prints the median and slowest chunk in ms, candidates per line and the buffers the slowest
chunk's plan touched (EXPLAIN ANALYZE). Not part of `make test`; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.benchdb import recreate_database  # noqa: E402

os.environ["DATABASE_URL"] = os.environ.get("BENCH_CANDIDATES_DATABASE_URL",
                                            "postgres://postgres@127.0.0.1:5432/zenith_bench_candidates")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("ZENITH_LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenith.settings")

PROJECT = "bench-candidates"
LINES_PER_QUERY = 100  # lines per timed `Ledger.load`, as the product read them before one load per batch


def build(rows: int) -> None:
    from django.db import connection

    from jobs.models import Project

    recreate_database()
    Project.objects.create(id=PROJECT, name="Bench candidates")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs_transaction (project_id, external_id, date, amount, currency, account, counterparty, "
            "description, reference, item_index, created_at, currency_inferred) "
            "SELECT %s, 'TX' || i, DATE '2025-01-01' + (i %% 365), round((exp(random() * 9) + 1)::numeric, 2), "
            "(ARRAY['EUR','USD','GBP'])[1 + i %% 3], 'ACC-' || (1000 + i %% 60), 'Vendor ' || (i %% 5000) || ' Ltd', "
            "'Invoice ' || i, CASE WHEN i %% 5 < 3 THEN 'REF' || i ELSE '' END, i - 1, now(), false "
            "FROM generate_series(1, %s) AS i", [PROJECT, rows])
        cursor.execute("ANALYZE jobs_transaction")


def main() -> int:
    import django

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunks", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the ledger of an earlier run")
    args = parser.parse_args()
    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs.datatypes.reconciliation import Ledger
    from jobs.forensics.matching import Line, MatchParams
    from jobs.models import Transaction

    if not args.reuse:
        started = time.perf_counter()
        build(args.rows)
        print(f"ledger of {args.rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    rng = random.Random(20)
    ids = rng.sample(range(1, args.rows + 1), args.chunks * LINES_PER_QUERY)
    by_id = {f"TX{i}": None for i in ids}
    for external_id, date, amount, currency in Transaction.objects.filter(
            project_id=PROJECT, external_id__in=list(by_id)).values_list("external_id", "date", "amount", "currency"):
        by_id[external_id] = (date, amount, currency)
    lines = []
    for n, (date, amount, currency) in enumerate(by_id.values()):
        fee = Decimal("1.50") if n % 4 == 0 else Decimal(0)
        lines.append(Line(n, f"L{n}", date + dt.timedelta(days=n % 3), amount - fee, currency,
                          "", "vendor"))
    params = MatchParams()
    timings, per_line = [], []
    slowest_sql, slowest = "", 0.0
    for start in range(0, len(lines), LINES_PER_QUERY):
        chunk = lines[start:start + LINES_PER_QUERY]
        with CaptureQueriesContext(connection) as queries:
            begun = time.perf_counter()
            ledger = Ledger.load(PROJECT, chunk, params)
            elapsed = (time.perf_counter() - begun) * 1000
        timings.append(elapsed)
        per_line.append(sum(len(ledger.candidates_for(line)) for line in chunk) / len(chunk))
        if elapsed > slowest:
            slowest, slowest_sql = elapsed, queries.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest_sql)
        plan = [row[0] for row in cursor.fetchall()]
    buffers = next((line.strip() for line in plan if "Buffers:" in line), "")
    print(f"{len(timings)} chunks of {LINES_PER_QUERY} lines against {args.rows:,} ledger rows: "
          f"median {statistics.median(timings):.0f} ms, slowest {max(timings):.0f} ms per chunk "
          f"({LINES_PER_QUERY * 1000 / statistics.median(timings):,.0f} lines/s for this query); "
          f"{statistics.mean(per_line):.1f} candidates per line; slowest plan: {buffers}")
    print("\n".join(plan[:12]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
