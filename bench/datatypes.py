"""Every data type end to end at scale: `.venv/bin/python bench/datatypes.py`.

Issue 20, goal 3: analysis over 1M stored transactions, reconciliation of 100k statement lines
against a 1M-row ledger, entity grouping of 1M names and embeddings of 1M texts, each end to
end in at most twice the time of ingesting 1M transactions, with memory flat. This runs them
as a user would, through `manage.py submit_job` against `manage.py zenith_worker --processes
N` subprocesses, one job at a time on an otherwise idle Zenith:

1. `ingest`: the ledger (`sample_data.transaction_sample`, with its planted red flags and
   ingestion traps) as a CSV upload: the yardstick the others are measured against;
2. `analysis`: `--source project` over the stored ledger;
3. `reconciliation`: the first `--lines` lines of the bank statement the sample writes for
   that ledger (dates moved, fees off, names as banks print them);
4. `entity`: `--names` names (`sample_data.entity_names`);
5. `embedding`: `--source project` over the stored ledger (description and counterparty).

Each job gets `--timeout` seconds; one still running then is cancelled and reported as such.
Prints, per job: seconds from submission to completion, items/s, the ratio to the ingest,
the workers' peak RSS and its growth during the job, and the job's accounting. Results go to
bench/out/datatypes.json. Its own database `zenith_bench_types` (recreated; override with
BENCH_TYPES_DATABASE_URL, the name must start with `zenith_bench`) and Redis database 10.
Generated files are kept in bench/out/types/ and reused. Run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FILES = OUT / "types"
sys.path.insert(0, str(ROOT))
from bench.benchdb import recreate_database  # noqa: E402

os.environ["DATABASE_URL"] = os.environ.get("BENCH_TYPES_DATABASE_URL",
                                            "postgres://postgres@127.0.0.1:5432/zenith_bench_types")
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("ZENITH_LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenith.settings")

PROJECT = "bench-types"
STEPS = ("ingest", "analysis", "reconciliation", "entity", "embedding")


def files(ledger_rows: int, lines: int, names: int) -> dict[str, Path]:
    from jobs.management import sample_data

    FILES.mkdir(parents=True, exist_ok=True)
    paths = {"ledger": FILES / f"ledger-{ledger_rows}.csv", "statement": FILES / f"statement-{ledger_rows}-{lines}.csv",
             "names": FILES / f"names-{names}.csv"}
    if not (paths["ledger"].exists() and paths["statement"].exists()):
        started = time.perf_counter()
        # The sample adds its planted copies and bad rows to the count asked for (about 0.5 %):
        # ask for fewer and keep at most `ledger_rows`, so that 1,000,000 fits one job.
        records, statement, _ = sample_data.transaction_sample(int(ledger_rows / 1.006), seed=20)
        records = records[:ledger_rows]
        sample_data.write(paths["ledger"], records, fields=sample_data.FIELDS_BY_ROLE["transactions"])
        sample_data.write(paths["statement"], statement[:lines], fields=sample_data.FIELDS_BY_ROLE["statement"])
        print(f"  ledger and statement written in {time.perf_counter() - started:.0f} s", flush=True)
    if not paths["names"].exists():
        records, _ = sample_data.entity_names(names, seed=20)
        sample_data.write(paths["names"], records, fields=sample_data.FIELDS_BY_ROLE["entities"])
    return paths


class Memory(threading.Thread):
    """Peak and first RSS of the worker pool's processes while a job runs."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.first, self.peak = root, {}, {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [psutil.Process(self.root), *psutil.Process(self.root).children(recursive=True)]
            except psutil.Error:
                procs = []
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                self.first.setdefault(proc.pid, rss)
                self.peak[proc.pid] = max(self.peak.get(proc.pid, 0), rss)
            time.sleep(0.5)

    def report(self) -> dict:
        mb = 2 ** 20
        if not self.peak:
            return {}
        return {"worker_peak_rss_mb": round(max(self.peak.values()) / mb),
                "worker_rss_growth_mb": round(max(self.peak[p] - self.first[p] for p in self.peak) / mb, 1)}


def run_job(step: str, argv: list[str], timeout: float, pool_pid: int) -> dict:
    from jobs.models import ProcessingJob

    before = set(ProcessingJob.objects.values_list("id", flat=True))
    memory = Memory(pool_pid)
    memory.start()
    started = time.perf_counter()
    submitted = subprocess.run([sys.executable, "manage.py", "submit_job", *argv, "--project", PROJECT], cwd=ROOT,
                               capture_output=True, text=True)
    if submitted.returncode:
        memory.stop.set()
        return {"step": step, "error": (submitted.stderr or submitted.stdout)[-500:]}
    submit_seconds = time.perf_counter() - started
    job = ProcessingJob.objects.exclude(id__in=before).get()
    finished = True
    while True:
        job.refresh_from_db()
        if job.completed_at:
            break
        if time.perf_counter() - started > timeout:
            subprocess.run([sys.executable, "manage.py", "cancel_job", str(job.id)], cwd=ROOT, capture_output=True)
            finished = False
            break
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    memory.stop.set()
    memory.join()
    job.refresh_from_db()
    return {"step": step, "data_type": job.data_type, "finished": finished, "status": job.status,
            "items": job.total_items, "seconds": round(seconds, 1), "submit_seconds": round(submit_seconds, 1),
            "items_per_second": round(job.total_items / seconds) if seconds else None,
            "processed": job.items_processed, "failed": job.items_failed, "skipped": job.items_skipped,
            "batches": job.total_batches, "batch_size": (job.batch_config or {}).get("size"),
            "accounting_identity": job.items_processed + job.items_failed + job.items_skipped == job.total_items,
            **memory.report()}


def main() -> int:
    import django

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=int, default=1_000_000, help="ledger rows (and texts, and analysed rows)")
    parser.add_argument("--lines", type=int, default=100_000, help="statement lines to reconcile")
    parser.add_argument("--names", type=int, default=1_000_000, help="names to group")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds a job may take before it is cancelled")
    parser.add_argument("--only", default=",".join(STEPS), help="steps to run (ingest always runs first)")
    args = parser.parse_args()
    django.setup()
    from jobs.models import Project
    from zenith.infra.redis import get_redis

    steps = [s for s in STEPS if s in {"ingest", *args.only.split(",")}]
    paths = files(args.ledger, args.lines, args.names)
    recreate_database()
    get_redis().flushdb()
    Project.objects.create(id=PROJECT, name="Bench data types")
    OUT.mkdir(parents=True, exist_ok=True)
    pool = subprocess.Popen([sys.executable, "manage.py", "zenith_worker", "--processes", str(args.workers)], cwd=ROOT,
                            stdout=open(OUT / "datatypes-workers.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    commands = {
        "ingest": [str(paths["ledger"]), "--type", "transaction"],
        "analysis": ["--type", "analysis", "--source", "project"],
        "reconciliation": [str(paths["statement"]), "--type", "reconciliation"],
        "entity": [str(paths["names"]), "--type", "entity"],
        "embedding": ["--type", "embedding", "--source", "project"],
    }
    results: list[dict] = []
    try:
        time.sleep(5)  # the pool's start-up
        for step in steps:
            result = run_job(step, commands[step], args.timeout, pool.pid)
            if results and results[0].get("seconds") and result.get("seconds"):
                result["vs_ingest"] = round(result["seconds"] / results[0]["seconds"], 2)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        if pool.poll() is None:
            os.killpg(pool.pid, signal.SIGTERM)
            pool.wait(60)
    (OUT / "datatypes.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print(f"\n| job ({args.workers} workers) | items | seconds | items/s | x ingest | worker peak RSS MB | "
          "growth MB | status |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['step']} | | | | | | | error: {r['error'][:80]} |")
            continue
        status = r["status"] if r["finished"] else f"cancelled after {args.timeout:.0f} s"
        print(f"| {r['step']} | {r['items']:,} | {r['seconds']} | {r['items_per_second']:,} "
              f"| {r.get('vs_ingest', 1.0)} "
              f"| {r.get('worker_peak_rss_mb')} | {r.get('worker_rss_growth_mb')} | {status} |")
    return 0


if __name__ == "__main__":
    csv.field_size_limit(10**7)
    sys.exit(main())
