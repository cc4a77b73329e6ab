"""Zenith's outside yardsticks side by side: `make bench-yardsticks` (or --help).

What it measures: on one file, the lean no-queue loop in 1 process and in N (bench/lean.py)
and the original design's Celery version with N worker processes (bench/celery_peer.py):
items/s, the ratio to the Celery peer, CPU seconds per million items of every process
involved (PostgreSQL's backends included), peak memory, Redis growth. Each run starts from
empty tables and a checkpoint; with --repeat the runners are interleaved and medians reported.
It checks that all three store the same rows and record the same failures (and with
--rerun-check, that storing the same file again into the same project stores nothing new),
prints a table and writes bench/out/yardsticks.json.

Why it exists: bench/run.py's reference is Zenith's own handler in a loop, so it inherits the
costs it should expose; these two are written for the bench, outside Zenith, and Zenith's
figures are to be read against them (ratios measured in the same session, never absolute
figures across sessions: the machine's speed drifts).

Its database is `zenith_lean` (LEAN_DATABASE_URL; the name must start with zenith_lean) and
its Redis database 5 (CELERY_PEER_REDIS_URL), flushed before each Celery run.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
# The batch size Zenith's optimizer picks for a 1M upload on an idle machine (750); the
# "batches/4" row asks for a quarter of it (issue 20: at most 10 % slower).
ZENITH_BATCH = 750
sys.path.insert(0, str(ROOT))

# The Celery peer runs in a process of its own: no kombu in this one, whose forked lean
# processes would inherit its memory and its after-fork hooks.
from bench import lean  # noqa: E402


def data_file(items: int, fmt: str) -> Path:
    """The bench's own files (bench/run.py's generator and seed; ~1 % invalid records), or a
    CSV variant with every field quoted, as many exports write them."""
    from jobs.management import sample_data  # plain generator code: the yardsticks themselves never import jobs

    OUT.mkdir(parents=True, exist_ok=True)
    suffix = {"jsonl": ".jsonl", "csv": ".csv", "csv-quoted": "-quoted.csv"}[fmt]
    path = OUT / f"transactions-{items}{suffix}"
    if not path.exists():
        records = sample_data.transactions(items, seed=11, invalid_rate=0.01)
        if fmt == "csv-quoted":
            with open(path, "w", encoding="utf-8", newline="") as out:
                writer = csv.DictWriter(out, fieldnames=sample_data.FIELDS, quoting=csv.QUOTE_ALL)
                writer.writeheader()
                writer.writerows(records)
        else:
            sample_data.write(path, records, fmt)
    return path


def zenith(path: Path, workers: int, batch_size: int | None = None) -> dict:
    """Zenith end to end over HTTP (bench/run.py --once: gunicorn, `zenith_worker`, the
    upload, the finalizer), in a process of its own that imports Django; its own database
    (zenith_bench) and Redis database (10)."""
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--once", str(path), "--workers", str(workers)]
    done = subprocess.run(argv + (["--batch-size", str(batch_size)] if batch_size else []), cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the Zenith run failed:\n{done.stderr[-3000:]}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    if not run["accounting_identity"] or run["status"] != "completed":
        raise SystemExit(f"the Zenith run did not add up: {run}")
    small = " batches/4" if batch_size else ""
    return {**run, "runner": f"zenith {workers}w{small}", "rows_in_table": run["rows_in_postgres"],
            "failure_rows": run["failed"], "cpu_s_per_1m": run["cpu_s_per_1m"],
            "job_totals": {"processed": run["processed"], "failed": run["failed"], "stored": run["rows_in_postgres"],
                           "duplicates": 0},
            "memory_mb": (run["web_peak_rss_mb"] or 0) + sum(run["worker_peak_rss_mb_each"])}


class Burner:
    """The busy machine: one process spinning on the CPU for the whole of a run (another job
    running), so that every runner shares the two cores with it alike."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def one(runner: str, path: Path, processes: int, workers: int, project: str | None = None, fresh: bool = True,
        busy: bool = False) -> dict:
    if busy:
        with Burner():
            result = one(runner, path, processes, workers, project, fresh)
        result["busy"] = True
        return result
    if runner.startswith("zenith"):
        result = zenith(path, workers, ZENITH_BATCH // 4 if runner == "zenith-small" else None)
        print(f"  {result['runner']:<12} {result['items_per_second']:>9,} items/s  {result['seconds']:>7.2f} s  "
              f"stored {result['rows_in_table']:,}  failures {result['failure_rows']:,}  batches {result['batches']} "
              f"x {result['batch_size']}", flush=True)
        return result
    if fresh:
        lean.reset()
    if runner == "celery":
        argv = [sys.executable, str(ROOT / "bench" / "celery_peer.py"), "run", str(path), "--workers", str(workers)]
        done = subprocess.run(argv + (["--project", project] if project else []), cwd=ROOT, capture_output=True,
                              text=True)
        if done.returncode:
            raise SystemExit(f"the Celery peer failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout)
        result["memory_mb"] = round(result["worker_tree_peak_rss_mb"] + result["submitter_peak_rss_mb"], 1)
    else:
        result = lean.run(path, processes if runner == "leanN" else 1, project)
        result.update(lean.counts(result["project_id"], result["job_id"]))
        result["memory_mb"] = result["peak_rss_mb_sum"]
    print(f"  {result['runner']:<12} {result['items_per_second']:>9,} items/s  {result['seconds']:>7.2f} s  "
          f"stored {result['rows_in_table']:,}  failures {result['failure_rows']:,}", flush=True)
    return result


def check(runs: dict[str, list[dict]], items: int) -> list[str]:
    """The three must agree: same rows stored, same failures, and exact job totals."""
    problems = []
    stored = {r["rows_in_table"] for rs in runs.values() for r in rs}
    failures = {r["failure_rows"] for rs in runs.values() for r in rs}
    if len(stored) != 1:
        problems.append(f"stored rows differ between runs: {sorted(stored)}")
    if len(failures) != 1:
        problems.append(f"failure rows differ between runs: {sorted(failures)}")
    for rs in runs.values():
        for r in rs:
            t = r["job_totals"]
            if (t["processed"] + t["failed"] != items or t["failed"] != r["failure_rows"]
                    or t["stored"] != r["rows_in_table"]):
                problems.append(f"{r['runner']}: job totals {t} do not add up to {items} items / the table")
    return problems


def rerun_check(runners, path: Path, processes: int, workers: int) -> list[dict]:
    """Each runner twice into one project of its own (all kept side by side in the table): the
    second run may store nothing new, and must count every valid record as a duplicate."""
    lean.reset()
    first = {name: one(name, path, processes, workers, fresh=False) for name in runners}
    results = []
    for name, run in first.items():
        again = one(name, path, processes, workers, project=run["project_id"], fresh=False)
        ok = (again["job_totals"]["stored"] == 0 and again["rows_in_table"] == run["rows_in_table"]
              and again["job_totals"]["duplicates"] == run["job_totals"]["processed"])
        results.append({"runner": again["runner"], "project_id": run["project_id"],
                        "stored_first": run["rows_in_table"],
                        "stored_again": again["job_totals"]["stored"], "duplicates": again["job_totals"]["duplicates"],
                        "rows_in_table": again["rows_in_table"], "ok": ok})
    return results


def summary(runs: dict[str, list[dict]]) -> list[dict]:
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("items_per_second", "cpu_s_per_1m", "memory_mb")}
           for name, rs in runs.items()}
    peer = med.get("celery", {}).get("items_per_second")
    lean_n = med.get("leanN", {})
    rows = []
    for name, rs in runs.items():
        m = med[name]
        rows.append({"runner": rs[0]["runner"], "items_per_second": round(m["items_per_second"]),
                     "runs": [r["items_per_second"] for r in rs],
                     "vs_celery": round(m["items_per_second"] / peer, 2) if peer else None,
                     "vs_lean_n": round(m["items_per_second"] / lean_n["items_per_second"], 2) if lean_n else None,
                     "cpu_s_per_1m": round(m["cpu_s_per_1m"], 1),
                     "cpu_vs_lean_n": round(m["cpu_s_per_1m"] / lean_n["cpu_s_per_1m"], 2) if lean_n else None,
                     "memory_mb": round(m["memory_mb"]),
                     "redis_growth_mb": (statistics.median(r["redis_growth_mb"] for r in rs)
                                         if name == "celery" or name.startswith("zenith") else None),
                     "batches": rs[-1].get("batches"), "batch_size": rs[-1].get("batch_size"),
                     "stored": rs[-1]["rows_in_table"], "failures": rs[-1]["failure_rows"]})
    return rows


def table(size: int, path: Path, rows: list[dict], busy: bool = False) -> str:
    lines = [f"\n{size:,} records, {path.name}{', busy machine (one core taken by another process)' if busy else ''}",
             "| run | items/s | vs Celery peer | vs lean 2p | CPU-s per 1M (all processes) | CPU vs lean 2p "
             "| peak RSS (sum of processes) | stored | failures |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        memory = f"{r['memory_mb']} MB"
        if r["redis_growth_mb"] is not None:
            memory += f" (Redis +{r['redis_growth_mb']} MB)"
        spread = f" ({min(r['runs']):,}-{max(r['runs']):,})" if len(r["runs"]) > 1 else ""
        name = r["runner"] + (f" ({r['batches']:,} x {r['batch_size']})" if r.get("batches") else "")

        def ratio(value):
            return f"{value}x" if value is not None else "-"
        lines.append(f"| {name} | {r['items_per_second']:,}{spread} | {ratio(r['vs_celery'])} | "
                     f"{ratio(r['vs_lean_n'])} | {r['cpu_s_per_1m']} | {ratio(r['cpu_vs_lean_n'])} | "
                     f"{memory} | {r['stored']:,} | {r['failures']:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="Item counts, comma-separated (ignored with --file).")
    parser.add_argument("--format", choices=("jsonl", "csv", "csv-quoted"), default="jsonl")
    parser.add_argument("--file", type=Path, help="Any .jsonl or .csv file of transaction records instead.")
    parser.add_argument("--processes", type=int, default=2, help="Processes of the lean N-process run.")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (--concurrency).")
    parser.add_argument("--repeat", type=int, default=1, help="Interleaved repeats of the three runs; medians.")
    parser.add_argument("--rerun-check", action="store_true", help="Store the file again into the same projects.")
    parser.add_argument("--zenith", action="store_true", help="Run Zenith end to end over HTTP beside them.")
    parser.add_argument("--only-zenith", action="store_true", help="Zenith's rows only (no yardsticks).")
    parser.add_argument("--small-batches", action="store_true",
                        help=f"With --zenith: also a run with batches of {ZENITH_BATCH // 4} (a quarter of its own).")
    parser.add_argument("--skip-lean1", action="store_true", help="Leave out the 1-process lean loop.")
    parser.add_argument("--busy", action="store_true",
                        help="Every run shares the machine with a process spinning on one core (another job).")
    parser.add_argument("--out", type=Path, default=OUT / "yardsticks.json")
    args = parser.parse_args()

    lean.ensure_database()
    report = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
              "load_average_at_start": os.getloadavg(), "batch_size": lean.BATCH, "sizes": []}
    problems: list[str] = []
    targets = [(None, args.file)] if args.file else [(int(s), None) for s in args.sizes.split(",")]
    for size, path in targets:
        path = path or data_file(size, args.format)
        print(f"{path.name}:", flush=True)
        names = ["lean1", "leanN", "celery"] if not args.only_zenith else []
        if args.zenith or args.only_zenith:
            names += ["zenith", "zenith-small"] if args.small_batches else ["zenith"]
        if args.skip_lean1 and "lean1" in names:
            names.remove("lean1")
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for _ in range(args.repeat):
            for name in runs:
                runs[name].append(one(name, path, args.processes, args.workers, busy=args.busy))
        items = next(iter(runs.values()))[0]["items"]
        found = check(runs, items)
        entry = {"items": items, "file": str(path), "summary": summary(runs), "runs": runs, "problems": found}
        if args.rerun_check:
            print("re-run check:", flush=True)
            entry["rerun_check"] = rerun_check(list(runs), path, args.processes, args.workers)
            found += [f"re-run stored again: {r}" for r in entry["rerun_check"] if not r["ok"]]
        problems += found
        report["sizes"].append(entry)
        print(table(items, path, entry["summary"], args.busy))
        for r in entry.get("rerun_check", []):
            print(f"  re-run {r['runner']} into {r['project_id']}: stored {r['stored_again']}, duplicates "
                  f"{r['duplicates']:,}, rows in the table {r['rows_in_table']:,} -> {'ok' if r['ok'] else 'WRONG'}")
    report["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nload average {report['load_average_at_start'][0]:.2f} at start, {report['load_average_at_end'][0]:.2f} "
          f"at end ({os.cpu_count()} CPUs); written to {args.out}")
    if problems:
        print("\n".join(["PROBLEMS:", *problems]))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
