"""The peer yardstick: the original design's Celery version, ported for the bench.

What it measures: the design Zenith started from (docs/design.md), run as that design runs
it, on the same file and table shape as bench/lean.py:
a submitter (FastAPI-free: the request body becomes a list of dicts in memory) splits the
records into batches and sends the items INSIDE the messages, as a `chord` of batch tasks
with a finalizer callback; `task_acks_late=True`, `worker_prefetch_multiplier=1`,
`worker_max_tasks_per_child=50`, the seed's retries and time limits, the first three batches at
a higher priority; Redis (db 5 by default) as broker and result backend. Progress lives in
Redis as the original design kept it: each batch's `update_state` meta and its result (with
the seed's per-item results list), the chord's counter, and the finalizer that sums them and
writes the job totals. Each task validates and stores its batch with the lean loop's own
functions (`lean.split_batch`, `lean.Store`), so the peer differs from the lean loop only by
the queue design. It reports items/s (from reading the file to the finalizer's result),
Redis memory growth, worker and submitter RSS, and CPU seconds of every process involved.

Why it is here and not Zenith's code: Zenith's targets are stated against this design
("x the Celery design", issue 20), so it has to exist as a runnable peer. Left out on purpose:
the seed's `rate_limit='10/m'` (per worker; it would cap two workers at 20 batches a minute
and measure the limit, not the design); the seed's blocking CPU sample and batch optimizer
are opt-in (`--seed-optimizer`), so by default batches are 1,000 items like the lean loop's.

    .venv/bin/python bench/celery_peer.py run bench/out/transactions-20000.jsonl --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import redis
from celery import Celery, chord, group
from celery.signals import worker_process_shutdown, worker_ready
from kombu import Exchange, Queue

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench import lean  # noqa: E402

REDIS_URL = os.environ.get("CELERY_PEER_REDIS_URL", "redis://127.0.0.1:6379/5")
DSN = lean.DSN
PG_CPU_KEY = "celery_peer:pg_backend_cpu"
READY_KEY = "celery_peer:ready"

# The seed's configuration (section 1.2), the beat schedule and the other queues aside.
app = Celery("zenith_forensic", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json", accept_content=["json"], result_serializer="json", timezone="UTC", enable_utc=True,
    worker_prefetch_multiplier=1, worker_max_tasks_per_child=50, task_acks_late=True,
    result_expires=3600, result_persistent=True,
    task_routes={"zenith_forensic.tasks.ingestion.*": {"queue": "ingestion"}},
    task_queue_max_priority=10, task_default_priority=5,
    task_queues=(Queue("ingestion", Exchange("ingestion"), routing_key="ingestion",
                       queue_arguments={"x-max-priority": 10}),),
)

_store: lean.Store | None = None


def store() -> lean.Store:
    """One database connection per pool process, opened on its first batch."""
    global _store
    if _store is None:
        _store = lean.Store(DSN)
    return _store


@worker_ready.connect
def _announce_ready(**_) -> None:
    """Readiness through a plain key: the bench process never opens a kombu connection (kombu's
    after-fork hooks would then hang the lean loop's forked processes)."""
    redis.Redis.from_url(REDIS_URL).set(READY_KEY, os.getpid())


@worker_process_shutdown.connect
def _report_backend_cpu(**_) -> None:
    """A recycled pool process (every 50 tasks) reports its PostgreSQL backend's CPU before
    the connection closes, so the bench counts it exactly."""
    if _store is not None:
        redis.Redis.from_url(REDIS_URL).hset(PG_CPU_KEY, _store.backend_pid, _store.backend_cpu())
        _store.close()


@app.task(bind=True, name="zenith_forensic.tasks.ingestion.process_transaction_batch", max_retries=3,
          default_retry_delay=60, time_limit=300, soft_time_limit=240, autoretry_for=(Exception,),
          retry_backoff=True, retry_backoff_max=600, retry_jitter=True)
def process_transaction_batch(self, batch: list[dict], project_id: str, batch_num: int, total_batches: int,
                              job_id: str, first_index: int) -> dict:
    self.update_state(state="PROCESSING", meta={"batch_num": batch_num, "total_batches": total_batches,
                                                "items_count": len(batch),
                                                "progress": batch_num / total_batches * 100})
    keys: list[str] = []
    rows, failure_lines = lean.split_batch(list(enumerate(batch, first_index)), keys)
    inserted = store().write(job_id, project_id, rows, failure_lines)
    return {"batch_num": batch_num, "processed": len(rows), "failed": len(failure_lines),
            "duplicates": len(rows) - inserted, "stored": inserted,
            "results": [{"id": key, "status": "processed", "timestamp": time.time()} for key in keys],
            "status": "completed"}


@app.task(bind=True, name="zenith_forensic.tasks.ingestion.finalize_batch_job")
def finalize_batch_job(self, batch_results: list[dict], job_id: str) -> dict:
    totals = {k: sum(r[k] for r in batch_results) for k in ("processed", "failed", "duplicates", "stored")}
    conn = store().conn
    conn.execute("UPDATE lean_job SET status = 'completed', completed_at = now(), processed = %s, failed = %s, "
                 "duplicates = %s, stored = %s WHERE id = %s",
                 (totals["processed"], totals["failed"], totals["duplicates"], totals["stored"], job_id))
    conn.commit()
    return {"job_id": job_id, "total_processed": totals["processed"], "total_failed": totals["failed"],
            "status": "finalized", **totals}


# --- the submitter (run in a process of its own, so its RSS is its own) -----------------------------

def seed_batch_size(base: int = 500) -> int:
    """The seed's BatchOptimizer for `transaction`, with its two blocking one-second samples."""
    cpu = psutil.cpu_percent(interval=1)
    psutil.cpu_times_percent(interval=1)
    size = int(base * 1.5) if cpu < 50 else int(base * 0.5) if cpu > 80 else base
    return int(size * 0.5) if psutil.virtual_memory().available < 2 * 1024 ** 3 else size


def submit(path: Path, project_id: str, batch_size: int | None) -> dict:
    with app.producer_or_acquire():  # a long-lived submitter (the seed's API) has its connections up already
        app.backend.client.ping()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with open(path, encoding="utf-8-sig", newline="") as f:  # the request body, all in memory as in the seed
        if path.suffix.lower() == ".csv":
            items = list(csv.DictReader(f))
        else:
            items = []
            for line in f:
                if line.strip():
                    try:
                        items.append(json.loads(line))
                    except ValueError:
                        items.append(None)
    size = batch_size or seed_batch_size()
    batches = [items[i:i + size] for i in range(0, len(items), size)]
    job_id = lean.new_job(DSN, project_id, "celery", total_items=len(items), total_batches=len(batches),
                          batch_config={"size": size})
    header = group(
        process_transaction_batch.s(batch=batch, project_id=project_id, batch_num=n + 1, total_batches=len(batches),
                                    job_id=job_id, first_index=n * size).set(priority=5 if n < 3 else 3)
        for n, batch in enumerate(batches))
    result = chord(header)(finalize_batch_job.s(job_id=job_id))
    submitted = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)  # the seed's API returns here; what follows is the bench's
    final = wait_finalized(job_id, result)
    seconds = time.perf_counter() - started
    return {"job_id": job_id, "project_id": project_id, "items": len(items), "batch_size": size,
            "batches": len(batches), "submit_seconds": round(submitted, 3), "seconds": round(seconds, 3),
            "final": final, "submitter_cpu_s": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime,
            "submitter_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def wait_finalized(job_id: str, result, timeout: float = 7200) -> dict:
    """Polls the job row, as a client polls the job's status, until the finalizer wrote it."""
    deadline = time.monotonic() + timeout
    with lean.psycopg.connect(DSN, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status, processed, failed, duplicates, stored FROM lean_job WHERE id = %s",
                               (job_id,)).fetchone()
            if row[0] == "completed":
                return dict(zip(("processed", "failed", "duplicates", "stored"), row[1:], strict=True))
            if result.failed():
                raise RuntimeError(f"the chord failed: {result.result!r}")
            time.sleep(0.05)
    raise TimeoutError(f"job {job_id} was not finalized in {timeout} s")


# --- the run: a worker subprocess, the submitter, sampling --------------------------------------------

class Sampler(threading.Thread):
    """Peak RSS of the worker's processes and Redis memory: the server's used_memory and the
    keys of our own database (other databases on the same server move the former)."""

    def __init__(self, pid: int, client: redis.Redis):
        super().__init__(daemon=True)
        self.pid, self.redis, self.halt = pid, client, threading.Event()
        self.redis_base = self.redis_peak = int(client.info("memory")["used_memory"])
        self.keys_peak = self.tree_peak = self.process_peak = 0

    def run(self) -> None:
        tick = 0
        while not self.halt.wait(0.25):
            tick += 1
            try:
                procs = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
                rss = [p.memory_info().rss for p in procs]
                self.tree_peak, self.process_peak = max(self.tree_peak, sum(rss)), max(self.process_peak, *rss)
            except psutil.Error:
                pass
            self.redis_peak = max(self.redis_peak, int(self.redis.info("memory")["used_memory"]))
            if tick % 4 == 0:
                keys = list(self.redis.scan_iter(count=1000))
                pipe = self.redis.pipeline(transaction=False)
                for key in keys:
                    pipe.memory_usage(key)
                self.keys_peak = max(self.keys_peak, sum(v or 0 for v in pipe.execute()))

    def stop(self) -> dict:
        self.halt.set()
        self.join()
        mb = 2 ** 20
        return {"worker_peak_rss_mb": round(self.process_peak / mb, 1),
                "worker_tree_peak_rss_mb": round(self.tree_peak / mb, 1),
                "redis_growth_mb": round((self.redis_peak - self.redis_base) / mb, 1),
                "redis_db_keys_peak_mb": round(self.keys_peak / mb, 1)}


def tree_cpu(pid: int) -> float:
    """CPU seconds of the worker: its own, its reaped children's (recycled pool processes) and
    its live children's."""
    main = psutil.Process(pid)
    times = main.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in main.children(recursive=True):
        try:
            total += lean.cpu_seconds(child)
        except psutil.Error:
            pass
    return total


def start_worker(workers: int, log: Path, client: redis.Redis) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CELERY_PEER_REDIS_URL": REDIS_URL, "LEAN_DATABASE_URL": DSN}
    argv = [sys.executable, "-m", "celery", "-A", "bench.celery_peer", "worker", "--concurrency", str(workers),
            "--pool", "prefork", "-Q", "ingestion", "--loglevel", "WARNING", "-n", f"peer-{uuid.uuid4().hex[:6]}@%h"]
    worker = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the Celery worker exited ({worker.returncode}); see {log}")
        if client.get(READY_KEY) and len(psutil.Process(worker.pid).children()) >= workers:
            return worker
        time.sleep(0.1)
    stop_worker(worker)
    raise RuntimeError(f"the Celery worker did not answer in 60 s; see {log}")


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(5)


def run(path: Path, workers: int = 2, batch_size: int | None = 1000, project_id: str | None = None) -> dict:
    """One end-to-end run on a fresh Redis database (ours) with a fresh worker."""
    project_id = project_id or f"celery-{workers}w-{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    log = ROOT / "bench" / "out" / "celery-peer-worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    worker = start_worker(workers, log, client)
    try:
        time.sleep(1.0)  # the pool's start-up is not the design's cost
        pg, sampler = lean.PgCpu(DSN), Sampler(worker.pid, client)
        pg.start()
        sampler.start()
        cpu_before = tree_cpu(worker.pid)
        argv = [sys.executable, str(Path(__file__).resolve()), "submit", str(path), "--project", project_id,
                "--batch-size", str(batch_size or 0)]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=7200,
                              env={**os.environ, "CELERY_PEER_REDIS_URL": REDIS_URL, "LEAN_DATABASE_URL": DSN})
        if done.returncode:
            raise RuntimeError(f"the submitter failed:\n{done.stderr[-3000:]}")
        sub = json.loads(done.stdout)
        worker_cpu = tree_cpu(worker.pid) - cpu_before
        for pid, cpu in client.hgetall(PG_CPU_KEY).items():
            pg.report(int(pid), float(cpu))
        pg_cpu, memory = pg.stop(), sampler.stop()
    finally:
        stop_worker(worker)
    items, final = sub["items"], sub.pop("final")
    cpu = worker_cpu + sub["submitter_cpu_s"] + pg_cpu["pg_backend_cpu_s"]
    return {
        "runner": f"celery {workers}w", "workers": workers, "file": str(path), **sub,
        "items_per_second": round(items / sub["seconds"]),
        "job_totals": {k: final[k] for k in ("processed", "failed", "duplicates", "stored")},
        "cpu_s": round(cpu, 2), "worker_cpu_s": round(worker_cpu, 2),
        "submitter_cpu_s": round(sub["submitter_cpu_s"], 2),
        **pg_cpu, "cpu_s_per_1m": round(cpu * 1e6 / items, 1) if items else None, **memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "submit"):
        p = sub.add_parser(name, help="a whole run (worker + submitter)" if name == "run" else "the submitter alone")
        p.add_argument("file", type=Path)
        p.add_argument("--project", help="Project id (default: a new one). Reuse one to see ON CONFLICT at work.")
        p.add_argument("--batch-size", type=int, default=1000, help="Items per batch; 0: the seed's optimizer.")
        if name == "run":
            p.add_argument("--workers", type=int, default=2, help="The worker's --concurrency (prefork processes).")
            p.add_argument("--seed-optimizer", action="store_true", help="Batch size from the seed's BatchOptimizer.")
            p.add_argument("--reset", action="store_true", help="Empty the lean tables first.")
    args = parser.parse_args()
    if args.command == "submit":
        json.dump(submit(args.file, args.project, args.batch_size or None), sys.stdout)
        return
    lean.ensure_database()
    if args.reset:
        lean.reset()
    result = run(args.file, args.workers, None if args.seed_optimizer else args.batch_size, args.project)
    result.update(lean.counts(result["project_id"], result["job_id"]))
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
