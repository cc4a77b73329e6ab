"""Shared fixtures: the real PostgreSQL (or SQLite) test database, a private Redis database,
and real Zenith workers in subprocesses that talk to both."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

from tests.support.datatypes import TEST_DATA_TYPES

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = Path(os.environ.get("ZENITH_TEST_OUTPUT", ROOT / "var" / "test-output"))

# Fast clocks for tests; the same values go to worker subprocesses and to this process.
FAST_SETTINGS = {
    "ZENITH_RETRY_BACKOFF_BASE": 0.3,
    "ZENITH_BATCH_LEASE_SECONDS": 3.0,
    "ZENITH_HEARTBEAT_SECONDS": 0.3,
    "ZENITH_REQUEUE_GRACE_SECONDS": 2.0,
    "ZENITH_BATCH_DELAY_FACTOR": 0.0,
    "ZENITH_BREAKER_COOLDOWN_SECONDS": 3.0,
    "ZENITH_STATUS_CACHE_SECONDS": 0,  # tests read their own writes; test_api checks the cache itself
}


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: runs real RQ workers in subprocesses")
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (skipped on the SQLite pass)")
    config.addinivalue_line("markers", "faults: fault-injection suite (run alone with -m faults)")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    config.addinivalue_line("markers", "heavy: slow and independent of the database engine (run once, on the "
                                       "PostgreSQL pass)")


def pytest_collection_modifyitems(config, items):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL; this pass runs on the embedded SQLite")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _zenith_settings(settings, tmp_path):
    settings.ZENITH_DATA_TYPES = TEST_DATA_TYPES
    settings.ZENITH_STAGED_UPLOAD_DIR = tmp_path / "uploads"
    for name, value in FAST_SETTINGS.items():
        setattr(settings, name, value)
    # Users made here are checked only in this process (test client, live_server): a fast
    # hasher instead of PBKDF2's million rounds, which took about a second of each fixture
    # that makes three users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield


@pytest.fixture
def redis():
    from zenith.infra.redis import get_redis

    connection_ = get_redis()
    db = connection_.connection_pool.connection_kwargs.get("db", 0)
    assert db != 0 or os.environ.get("ZENITH_TEST_ALLOW_REDIS_DB0"), "tests must not use Redis db 0"
    connection_.flushdb()
    yield connection_


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def worker_env(**overrides) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "ZENITH_DATA_TYPES_JSON": json.dumps(TEST_DATA_TYPES),
        "PYTHONPATH": str(ROOT),
        "ZENITH_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    })
    for name, value in FAST_SETTINGS.items():
        env[name] = str(value)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = json.dumps(value) if isinstance(value, dict) else str(value)
    return env


class ManagedProcess:
    """A `manage.py` command in a subprocess (its own process group), logging to a file."""

    def __init__(self, args: list[str], *, env: dict | None = None, log_name: str):
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = OUTPUT_DIR / f"{log_name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT,
                                     env=env or worker_env(), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._record_stuck_stop(timeout)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(5)
        self.log.close()

    def _record_stuck_stop(self, timeout: float) -> None:
        """Did not stop on SIGTERM: where each of its processes was, into the log and a
        `stuck-stop-*.txt` beside it, before the SIGKILL."""
        report = [f"{self.log_path.name}: still running {timeout:g} s after SIGTERM"]
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        try:
            processes = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            processes = []
        for process in processes:
            try:
                report.append(f"--- pid {process.pid} {process.status()} {' '.join(process.cmdline())[:200]}")
                dump = subprocess.run([spy, "dump", "--pid", str(process.pid)], capture_output=True, text=True,
                                      timeout=10)
                report.append(dump.stdout or dump.stderr)
            except (psutil.Error, OSError, subprocess.SubprocessError) as exc:
                report.append(f"(no stack: {exc})")
        text = "\n".join(report)
        (self.log_path.parent / f"stuck-stop-{self.log_path.stem}.txt").write_text(text)
        print(text, file=sys.stderr)

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()


class SchedulerProcess(ManagedProcess):
    """`manage.py zenith_scheduler`: the periodic work (reconciler included) as deployed, so
    fault tests prove the system heals itself rather than the test calling the reconciler."""

    def __init__(self, *, reconcile_every: int = 3, env: dict | None = None):
        env = env or worker_env(ZENITH_RECONCILE_INTERVAL_SECONDS=reconcile_every)
        super().__init__(["zenith_scheduler", "--interval", "1"], env=env, log_name="scheduler")


class WorkerPool(ManagedProcess):
    """`manage.py zenith_worker` in a subprocess (its own process group)."""

    def __init__(self, processes: int = 2, *, env: dict | None = None, queues: list[str] | None = None,
                 max_jobs: int = 0, log_name: str = "workers", scheduler: bool = True):
        args = ["zenith_worker", "--processes", str(processes), "--max-jobs", str(max_jobs),
                *([] if scheduler else ["--no-scheduler"]), *(queues or [])]
        super().__init__(args, env=env, log_name=log_name)

    def worker_pids(self) -> list[int]:
        """Live worker children (the pool's scheduler child excluded: it is no RQ worker)."""
        from rq import Worker

        from zenith.infra.redis import get_redis

        try:
            children = {child.pid for child in psutil.Process(self.proc.pid).children()
                        if child.status() != psutil.STATUS_ZOMBIE}
        except psutil.Error:
            return []
        try:
            registered = {worker.pid for worker in Worker.all(connection=get_redis())}
        except Exception:
            registered = set()
        return sorted(children & registered)

    def wait_ready(self, count: int, timeout: float = 30.0) -> None:
        from rq import Worker

        from zenith.infra.redis import get_redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(Worker.all(connection=get_redis())) >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker pool exited: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"workers not ready after {timeout}s: {self.log_path.read_text()[-3000:]}")


@pytest.fixture
def start_workers(redis) -> Iterator[Callable[..., WorkerPool]]:
    pools: list[WorkerPool] = []

    def start(processes: int = 2, *, wait: bool = True, **kwargs) -> WorkerPool:
        pool = WorkerPool(processes, **kwargs)
        pools.append(pool)
        if wait:
            pool.wait_ready(processes)
        return pool

    yield start
    for pool in pools:
        pool.stop()


@pytest.fixture
def start_scheduler(redis) -> Iterator[Callable[..., SchedulerProcess]]:
    processes: list[SchedulerProcess] = []

    def start(**kwargs) -> SchedulerProcess:
        process = SchedulerProcess(**kwargs)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, interval: float = 0.2,
               reconcile: bool = False, message: str = "condition") -> object:
    from jobs.services import reconcile as run_reconciler

    deadline = time.monotonic() + timeout
    last_reconcile = 0.0
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if reconcile and time.monotonic() - last_reconcile > 1.0:
            last_reconcile = time.monotonic()
            try:
                run_reconciler()
            except Exception as exc:  # Redis may be down on purpose (fault tests)
                print(f"reconciler unavailable: {type(exc).__name__}: {exc}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def wait_for_job(job_id, timeout: float = 90.0, reconcile: bool = True):
    from jobs.models import ProcessingJob

    def finalized():
        job = ProcessingJob.objects.get(id=job_id)
        return job if job.completed_at else None

    try:
        return wait_until(finalized, timeout=timeout, reconcile=reconcile, message=f"job {job_id} to finalize")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{describe_unfinished_job(job_id)}") from None


def describe_unfinished_job(job_id) -> str:
    """What a job that did not finalize was waiting for: its counters, every batch not yet
    ended with its RQ message's state, the queues, and the tail of the scheduler's log, so an
    intermittent failure in CI explains itself."""
    from django.db.models import Count
    from rq.job import Job as RQJob

    from jobs.models import TERMINAL_BATCH_STATUSES, Batch, ProcessingJob
    from zenith.infra.redis import get_redis

    lines = []
    try:
        job = ProcessingJob.objects.get(id=job_id)
        lines.append(f"job: status={job.status} batches done/failed/cancelled/total={job.batches_completed}/"
                     f"{job.batches_failed}/{job.batches_cancelled}/{job.total_batches} "
                     f"error_message={job.error_message!r}")
        counts = dict(Batch.objects.filter(job_id=job_id).values_list("status").annotate(n=Count("id")))
        lines.append(f"batches by status: {counts}")
        open_batches = list(Batch.objects.filter(job_id=job_id).exclude(status__in=TERMINAL_BATCH_STATUSES)
                            .order_by("number")[:20])
        redis = get_redis()
        try:
            messages = RQJob.fetch_many([b.rq_job_id or "-" for b in open_batches], connection=redis)
        except Exception as exc:  # Redis may be down on purpose
            messages = [f"(redis: {exc})"] * len(open_batches)
        for batch, message in zip(open_batches, messages, strict=True):
            state = message.get_status(refresh=False) if isinstance(message, RQJob) else message
            lines.append(f"  batch {batch.number}: {batch.status} attempts={batch.attempts} rq={batch.rq_job_id} "
                         f"rq_state={state} queued={batch.queued_at} heartbeat={batch.heartbeat_at} "
                         f"next_attempt={batch.next_attempt_at} worker={batch.worker_name}")
        try:
            queues = {key.decode(): redis.llen(key) for key in redis.scan_iter("rq:queue:*")}
            lines.append(f"rq queues: {queues}")
        except Exception as exc:
            lines.append(f"rq queues: ({exc})")
    except Exception as exc:
        lines.append(f"(could not describe job: {type(exc).__name__}: {exc})")
    logs = sorted(OUTPUT_DIR.glob("scheduler-*.log"), key=lambda path: path.stat().st_mtime)
    if logs:
        lines.append(f"--- tail of {logs[-1].name}")
        lines.extend(logs[-1].read_text(errors="replace").splitlines()[-25:])
    return "\n".join(lines)


def assert_accounting(job) -> None:
    """The promises a finalized job keeps: identity, counters = sum over batches, no
    duplicate result rows, nothing left unfinished."""
    from django.db.models import Count, Sum

    from jobs.models import TERMINAL_BATCH_STATUSES, Batch, ItemFailure, Transaction

    job.refresh_from_db()
    assert job.completed_at is not None, "job not finalized"
    assert job.items_processed + job.items_failed + job.items_skipped == job.total_items
    sums = Batch.objects.filter(job=job).aggregate(p=Sum("processed_count"), f=Sum("failed_count"),
                                                   s=Sum("skipped_count"), n=Count("id"))
    assert (sums["p"], sums["f"], sums["s"]) == (job.items_processed, job.items_failed, job.items_skipped)
    assert sums["n"] == job.total_batches
    assert not Batch.objects.filter(job=job).exclude(status__in=TERMINAL_BATCH_STATUSES).exists()
    assert job.batches_completed + job.batches_failed + job.batches_cancelled == job.total_batches
    failure_rows = ItemFailure.objects.filter(job=job).count()
    dead_items = Batch.objects.filter(job=job, status="dead", rerun_scope="").aggregate(n=Sum("item_count"))["n"] or 0
    assert failure_rows + dead_items == job.items_failed
    duplicates = (Transaction.objects.filter(job=job).values("project_id", "external_id")
                  .annotate(n=Count("id")).filter(n__gt=1))
    assert not duplicates.exists()


def drain(job_id, max_rounds: int = 10_000) -> None:
    """Runs a job's batches in this process, the way a worker would, until it is finalized.
    For tests of the API and pages that need finished jobs but not real workers."""
    from jobs.models import Batch, ProcessingJob
    from jobs.services import finalize_if_ready
    from jobs.services.execution import run_batch

    for _ in range(max_rounds):
        batch = Batch.objects.filter(job_id=job_id, status__in=["queued", "retrying"]).order_by("number").first()
        if batch is None:
            finalize_if_ready(job_id)
            if ProcessingJob.objects.get(id=job_id).completed_at:
                return
            from jobs.services import reconcile

            reconcile()
            continue
        run_batch(batch.id, worker_name="test")
    raise AssertionError("job did not finish")


@pytest.fixture
def api_users(db):
    """Two users, each the owner of a project, and a staff operator (with the explicit operator
    permissions: staff status alone grants nothing, jobs.selectors.access); each with an API token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    from jobs.models import Project

    User = get_user_model()
    users = {}
    for name in ("alice", "bob"):
        user = User.objects.create_user(name, password="pw")
        project = Project.objects.create(id=f"{name}-audit", name=f"{name}'s audit", created_by=user)
        project.members.add(user, through_defaults={"role": "owner"})
        users[name] = user
    users["staff"] = User.objects.create_user("carol", password="pw", is_staff=True)
    users["staff"].user_permissions.add(*Permission.objects.filter(
        content_type__app_label="jobs", codename__in=["operate_all_projects", "force_breaker"]))
    for user in users.values():
        Token.objects.create(user=user)
    return users


def api_client(user=None):
    from rest_framework.test import APIClient

    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Closes what worker subprocesses and live servers left connected to the test database,
    so that pytest-django can drop it at the end."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")


FAULT_REPORT: list[dict] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The fault-injection suite's figures, printed at the end and kept in var/test-output/."""
    if not FAULT_REPORT:
        return
    header = f"{'scenario':<44} {'faults':>6} {'items':>8} {'lost':>5} {'dupes':>6} {'stuck':>6} {'seconds':>8}"
    lines = [header, "-" * len(header)]
    for row in FAULT_REPORT:
        lines.append(f"{row['scenario']:<44} {row['faults']:>6} {row['items']:>8} {row['lost']:>5} "
                     f"{row['duplicates']:>6} {row['stuck']:>6} {row['seconds']:>8.1f}")
    totals = {key: sum(row[key] for row in FAULT_REPORT) for key in ("faults", "items", "lost", "duplicates", "stuck")}
    lines.append(f"{'total':<44} {totals['faults']:>6} {totals['items']:>8} {totals['lost']:>5} "
                 f"{totals['duplicates']:>6} {totals['stuck']:>6}")
    terminalreporter.write_sep("=", "fault-injection report")
    for line in lines:
        terminalreporter.write_line(line)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / "fault-report.txt").write_text("\n".join(lines) + "\n")
    (OUTPUT_DIR / "fault-report.json").write_text(json.dumps(FAULT_REPORT, indent=2))


# --- a real browser ---------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture
def chromium():
    """Debian's Chromium driven by Playwright (it cannot download a browser of its own here)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()
