"""One large job across 1, 2, 4 and 8 worker processes: `make bench-scale-out` (or --help).

What it measures (issue 20, goal 4): a job's window follows the live workers serving its
queue (jobs.engine.capacity), so one job alone should keep every worker busy. For each
worker count it runs one upload end to end over HTTP (bench/run.py's `zenith`: gunicorn,
`zenith_worker --processes N`, the finalizer), samples every 50 ms how many of the job's
batches are running, and reports items/s, the most batches running at once, the median
while the job ran, and the window recorded on the job. Runs are interleaved over the worker
counts with --repeat, medians reported.

Why throughput is shown beside concurrency: on a machine with fewer cores than workers the
batches run at once but share the cores (and PostgreSQL's), so items/s stops rising at the
core count; the concurrency figure is what says whether more hosts would be used.

Its database and Redis are bench/run.py's (zenith_bench, Redis db 10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run, yardsticks  # noqa: E402


class Concurrency(threading.Thread):
    """Running batches of the unfinished job, every 50 ms (its own database connection)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from jobs.models import Batch, BatchStatus

        try:
            while not self.halt.wait(0.05):
                running = Batch.objects.filter(status=BatchStatus.RUNNING, job__completed_at__isnull=True).count()
                if running or self.samples:
                    self.samples.append(running)
        finally:
            connection.close()

    def report(self) -> dict:
        busy = self.samples or [0]
        # The ramp-up and the tail (fewer batches left than workers) are in the samples too:
        # the median of the middle half is the steady state.
        middle = busy[len(busy) // 4: max(len(busy) // 4 + 1, 3 * len(busy) // 4)]
        return {"max_running": max(busy), "median_running": statistics.median(middle), "samples": len(busy)}


def one(path: Path, workers: int) -> dict:
    watch = Concurrency()
    watch.start()
    try:
        result = run.zenith(path, workers)
    finally:
        watch.halt.set()
        watch.join()
    return {"workers": workers, "items_per_second": result["items_per_second"], "seconds": result["seconds"],
            "window": result["window"], "batches": result["batches"], "batch_size": result["batch_size"],
            "accounting_identity": result["accounting_identity"], "cpu_s_per_1m": result["cpu_s_per_1m"],
            **watch.report()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--format", choices=("jsonl", "csv", "csv-quoted"), default="csv-quoted")
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=run.OUT / "scale-out.json")
    args = parser.parse_args()

    run.setup_django()
    run.ensure_database()
    path = yardsticks.data_file(args.items, args.format)
    counts = [int(w) for w in args.workers.split(",")]
    runs: dict[int, list[dict]] = {n: [] for n in counts}
    for _ in range(args.repeat):
        for n in counts:
            result = one(path, n)
            print(f"  {n} workers: {result['items_per_second']:,} items/s, window {result['window']}, "
                  f"running at once: max {result['max_running']}, median {result['median_running']}", flush=True)
            runs[n].append(result)
    base = statistics.median(r["items_per_second"] for r in runs[counts[0]])
    rows = []
    print(f"\n{args.items:,} records, {path.name}, one job\n"
          "| worker processes | items/s | vs 1 worker | window asked by the optimizer "
          "| batches running at once (max / steady median) | CPU-s per 1M |\n|---:|---:|---:|---:|---|---:|")
    for n, rs in runs.items():
        ips = statistics.median(r["items_per_second"] for r in rs)
        row = {"workers": n, "items_per_second": round(ips), "vs_first": round(ips / base, 2),
               "window": rs[-1]["window"], "max_running": max(r["max_running"] for r in rs),
               "median_running": statistics.median(r["median_running"] for r in rs),
               "cpu_s_per_1m": statistics.median(r["cpu_s_per_1m"] for r in rs), "runs": rs}
        rows.append(row)
        print(f"| {n} | {row['items_per_second']:,} | {row['vs_first']}x | {row['window']} | "
              f"{row['max_running']} / {row['median_running']} | {row['cpu_s_per_1m']} |")
    args.out.write_text(json.dumps({"items": args.items, "file": str(path), "rows": rows}, indent=2, default=str))
    problems = [r for r in rows if r["max_running"] < r["workers"] or not all(x["accounting_identity"] for x in
                                                                              r["runs"])]
    if problems:
        print("PROBLEMS: a job did not keep every worker busy, or did not add up:",
              [(r["workers"], r["max_running"]) for r in problems])
        raise SystemExit(1)


if __name__ == "__main__":
    main()
