"""Connection pooling (issue 9) and `make run` (`manage.py zenith_up`) end to end.

- The settings build DATABASES' psycopg pool and the Redis pool from the environment and
  refuse bad values at startup with a message naming the variable.
- A real `zenith_worker` pool with ZENITH_DB_POOL=true runs a job to exact counts while every
  process stays within its pool's size, as pg_stat_activity and the processes' own sockets
  show; a forked worker never shares a PostgreSQL socket with its parent, even when the
  parent had opened its pool before forking.
- ZENITH_REDIS_MAX_CONNECTIONS caps a process's Redis pool; one more connection fails at once
  with a message naming the setting (redis-py's ConnectionPool does not wait).
- `manage.py zenith_up` on a fresh embedded SQLite answers /healthz and /readyz, runs its demo
  jobs to completion, and leaves no process behind on SIGTERM; with no Redis reachable it
  starts its own and stops it again on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
from django.conf import settings
from django.db import connection

from jobs.models import JobStatus, Transaction
from jobs.services import submit_job
from tests.conftest import OUTPUT_DIR, ROOT, WorkerPool, assert_accounting, wait_for_job, worker_env
from tests.support.factories import member_project, transaction_records


def run_python(code: str, **env_overrides) -> subprocess.CompletedProcess:
    """Runs `code` after django.setup() in a fresh interpreter with worker_env(**env_overrides):
    the environment -> settings -> pools path exactly as a deployed process takes it."""
    env = worker_env(**env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "zenith.settings"
    return subprocess.run([sys.executable, "-c", "import django\ndjango.setup()\n" + code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def last_json_line(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- settings: values parsed, bad ones refused at startup ---------------------------------

BAD_VALUES = [
    ({"ZENITH_DB_POOL": "ture"}, "ZENITH_DB_POOL"),
    ({"ZENITH_DB_POOL": "true", "ZENITH_DB_POOL_MIN_SIZE": "5", "ZENITH_DB_POOL_MAX_SIZE": "2"},
     "ZENITH_DB_POOL_MIN_SIZE"),
    ({"ZENITH_DB_POOL_MAX_SIZE": "0"}, "ZENITH_DB_POOL_MAX_SIZE"),
    ({"ZENITH_DB_POOL_MIN_SIZE": "-1"}, "ZENITH_DB_POOL_MIN_SIZE"),
    ({"ZENITH_DB_POOL_MAX_SIZE": "ten"}, "ZENITH_DB_POOL_MAX_SIZE"),
    ({"ZENITH_DB_CONN_MAX_AGE": "5m"}, "ZENITH_DB_CONN_MAX_AGE"),
    # redis-py would silently turn 0 into its own default of 100.
    ({"ZENITH_REDIS_MAX_CONNECTIONS": "0"}, "ZENITH_REDIS_MAX_CONNECTIONS"),
    ({"ZENITH_REDIS_MAX_CONNECTIONS": "many"}, "ZENITH_REDIS_MAX_CONNECTIONS"),
    ({"REDIS_URL": "127.0.0.1:6379/6"}, "REDIS_URL"),
]


@pytest.mark.parametrize(("env", "variable"), BAD_VALUES, ids=[";".join(f"{k}={v}" for k, v in e.items())
                                                               for e, _ in BAD_VALUES])
def test_bad_connection_settings_fail_at_startup_naming_the_variable(env, variable):
    """A bad value stops `manage.py` before it does anything, with one line that names the
    variable and its value, raised from the settings (not from psycopg or redis-py the first
    time a worker touches the database or Redis, after it started)."""
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=worker_env(**env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, f"accepted {env}: {result.stdout}{result.stderr}"
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr[-2000:]
    assert variable in last and repr(env[variable]) in last, last
    assert "psycopg" not in result.stderr and "site-packages/redis" not in result.stderr, result.stderr[-2000:]


@pytest.mark.postgres
def test_db_pool_settings_build_djangos_psycopg_pool():
    """ZENITH_DB_POOL=true gives Django's psycopg pool of the configured sizes (and no
    persistent connections, which Django refuses together with a pool); off, persistent
    connections of ZENITH_DB_CONN_MAX_AGE seconds."""
    code = (
        "import json\nfrom django.db import connection\n"
        "db = connection.settings_dict\n"
        "pool = connection.pool\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT 1')\n"
        "print(json.dumps({'pool': db['OPTIONS'].get('pool'), 'max_age': db['CONN_MAX_AGE'],\n"
        "                  'sizes': [pool.min_size, pool.max_size] if pool else None,\n"
        "                  'pooled': bool(pool) and connection.connection._pool is pool}))\n"
    )
    pooled = last_json_line(run_python(code, ZENITH_DB_POOL="true", ZENITH_DB_POOL_MIN_SIZE=1,
                                       ZENITH_DB_POOL_MAX_SIZE=3))
    assert pooled == {"pool": {"min_size": 1, "max_size": 3}, "max_age": 0, "sizes": [1, 3], "pooled": True}
    persistent = last_json_line(run_python(code, ZENITH_DB_POOL="false", ZENITH_DB_CONN_MAX_AGE=120))
    assert persistent == {"pool": None, "max_age": 120, "sizes": None, "pooled": False}


# --- Redis: the pool's size comes from settings and is a hard cap -------------------------

@pytest.mark.heavy  # Redis/RQ behaviour: the same on both engines
def test_redis_max_connections_caps_the_process_pool(redis):
    """ZENITH_REDIS_MAX_CONNECTIONS=3: the shared client's pool holds at most 3 connections;
    with all 3 checked out a command fails at once with MaxConnectionsError naming the
    setting; a released connection is reused (no fourth is created)."""
    code = (
        "import json, time\nfrom redis.exceptions import MaxConnectionsError\n"
        "from zenith.infra.redis import get_redis\n"
        "client = get_redis()\npool = client.connection_pool\n"
        "out = {'max': pool.max_connections, 'same_client': get_redis() is client}\n"
        "held = [pool.get_connection() for _ in range(3)]\n"
        "started = time.monotonic()\n"
        "try:\n    client.ping()\n    out['fourth'] = 'no error'\n"
        "except MaxConnectionsError as exc:\n    out['fourth'] = str(exc)\n"
        "out['failed_after'] = time.monotonic() - started\n"
        "pool.release(held.pop())\n"
        "out['after_release'] = client.ping()\n"
        "out['created'] = len(pool._available_connections) + len(pool._in_use_connections)\n"
        "print(json.dumps(out))\n"
    )
    out = last_json_line(run_python(code, ZENITH_REDIS_MAX_CONNECTIONS=3))
    assert out["max"] == 3 and out["same_client"]
    assert "ZENITH_REDIS_MAX_CONNECTIONS" in out["fourth"] and "3" in out["fourth"], out["fourth"]
    assert out["failed_after"] < 1.0, "the pool must fail fast, not wait"
    assert out["after_release"] is True and out["created"] == 3
    # The default, when unset, is the documented 50.
    assert last_json_line(run_python("from zenith.infra.redis import get_redis\n"
                                     "print(get_redis().connection_pool.max_connections)",
                                     ZENITH_REDIS_MAX_CONNECTIONS=None)) == 50


# --- PostgreSQL pool inside real forked workers -------------------------------------------

def tree_sockets(root_pid: int, port: int) -> dict[int, set[int]]:
    """Local ports of the established TCP connections to `port`, per process of the tree."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    sockets = {}
    for proc in procs:
        try:
            sockets[proc.pid] = {conn.laddr.port for conn in proc.net_connections(kind="tcp")
                                 if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED}
        except psutil.Error:
            continue
    return sockets


class PoolWatch:
    """Samples which process of a worker pool holds which PostgreSQL backend of the test
    database (pg_stat_activity's client_port matched to the processes' own sockets)."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self.db_port = int(connection.settings_dict.get("PORT") or 5432)
        self.redis_port = urlparse(settings.REDIS_URL).port or 6379
        self.max_db: dict[int, int] = {}
        self.max_redis: dict[int, int] = {}
        self.backends: set[int] = set()
        self.shared: list[str] = []
        self.samples = 0

    def sample(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT client_port, pid FROM pg_stat_activity "
                           "WHERE datname = current_database() AND client_port IS NOT NULL")
            backends = dict(cursor.fetchall())
        owners: dict[int, list[int]] = {}
        for pid, ports in tree_sockets(self.root_pid, self.db_port).items():
            mine = ports & backends.keys()
            self.max_db[pid] = max(self.max_db.get(pid, 0), len(mine))
            self.backends |= {backends[port] for port in mine}
            for port in ports:
                owners.setdefault(port, []).append(pid)
        self.shared += [f"PostgreSQL socket :{port} open in processes {pids}"
                        for port, pids in owners.items() if len(pids) > 1]
        for pid, ports in tree_sockets(self.root_pid, self.redis_port).items():
            self.max_redis[pid] = max(self.max_redis.get(pid, 0), len(ports))
        self.samples += 1


def transactions(n: int) -> list[dict]:
    # sleep_ms keeps each batch running long enough for several samples of the pool.
    return transaction_records(
        n, "P", digits=6, date="2026-03-01", amount=lambda i: f"{i % 97 + 1}.25", currency="EUR",
        account=lambda i: f"ACC{i % 7}", counterparty=lambda i: f"Vendor {i % 11}", description=lambda i: f"row {i}",
        sleep_ms=2)


@pytest.fixture
def project(db):
    return member_project("pooling", "Pooling", "pooler")


POOL_ENV = {"ZENITH_DB_POOL": "true", "ZENITH_DB_POOL_MIN_SIZE": 1, "ZENITH_DB_POOL_MAX_SIZE": 2,
            "ZENITH_REDIS_MAX_CONNECTIONS": 4}


def run_pooled_job(project, pool: WorkerPool, processes: int) -> PoolWatch:
    """Submits 1,200 probe records (3 invalid), samples the pool's connections until the job is
    final, and checks the exact counts."""
    records = transactions(1200)
    for index in (5, 600, 1111):
        records[index]["currency"] = "EURO"
    watch = PoolWatch(pool.proc.pid)
    watch.sample()  # before any work: what the processes hold just after the fork
    assert not watch.shared, watch.shared[:5]
    job = submit_job(project=project, data_type="probe", records=iter(records))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        watch.sample()
        assert not watch.shared, watch.shared[:5]  # fail at once: a shared session may hang the job
        job.refresh_from_db()
        if job.completed_at:
            break
        assert pool.proc.poll() is None, pool.text()[-3000:]
        time.sleep(0.2)
    job = wait_for_job(job.id, timeout=30)
    watch.sample()
    assert job.status == JobStatus.COMPLETED, pool.text()[-3000:]
    assert (job.total_items, job.items_processed, job.items_failed, job.items_skipped) == (1200, 1197, 3, 0)
    assert Transaction.objects.filter(job=job).count() == 1197
    assert_accounting(job)
    assert not watch.shared, watch.shared[:5]
    workers = set(pool.worker_pids())
    assert len(workers) == processes
    over = {pid: n for pid, n in watch.max_db.items() if n > POOL_ENV["ZENITH_DB_POOL_MAX_SIZE"]}
    assert not over, f"processes over the pool's max_size: {over}"
    assert max(watch.max_db.get(pid, 0) for pid in workers) >= 1, watch.max_db
    # Over a dozen batches or more, each closing its connection after (CONN_MAX_AGE is 0 with
    # a pool), the workers kept reusing their pooled backends instead of opening new ones.
    assert len(watch.backends) <= (processes + 2) * POOL_ENV["ZENITH_DB_POOL_MAX_SIZE"], watch.backends
    over = {pid: n for pid, n in watch.max_redis.items() if n > POOL_ENV["ZENITH_REDIS_MAX_CONNECTIONS"]}
    assert not over, f"processes over ZENITH_REDIS_MAX_CONNECTIONS: {over}"
    return watch


def report(name: str, watch: PoolWatch) -> None:
    line = (f"{name}: samples={watch.samples} postgres per process (max)={sorted(watch.max_db.values())} "
            f"distinct backends={len(watch.backends)} redis per process (max)={sorted(watch.max_redis.values())}")
    print(line)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUTPUT_DIR / "connections-report.txt", "a") as out:
        out.write(line + "\n")


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_worker_pool_with_db_pool_runs_a_job_within_its_pool_sizes(project, start_workers):
    pool = start_workers(2, env=worker_env(**POOL_ENV))
    watch = run_pooled_job(project, pool, processes=2)
    # The supervising parent never holds a database connection.
    assert watch.max_db.get(pool.proc.pid, 0) == 0
    report("zenith_worker --processes 2, ZENITH_DB_POOL=true (1..2)", watch)


class PrewarmedWorkerPool(WorkerPool):
    """`zenith_worker` started from a parent that already used the database, so its psycopg
    pool is open (with live connections and the pool's threads) when the workers fork.
    Anything the parent does before forking (a data type handler importing fixtures, a
    check) leaves it in that state."""

    SCRIPT = (
        "import sys\nimport django\ndjango.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT 1')\n"
        "from django.core.management import call_command\n"
        "call_command('zenith_worker', *sys.argv[1:])\n"
    )

    def __init__(self, processes: int, env: dict):
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = OUTPUT_DIR / f"prewarmed-workers-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, "--processes", str(processes), "--max-jobs", "0"], cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "zenith.settings"}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_forked_workers_never_share_the_parents_pooled_connections(project, redis):
    """A child that inherited its parent's open pool would hand out the parent's sockets: two
    processes on one PostgreSQL session, interleaving their protocol messages. The pool must
    be closed in the parent before each fork, so each child builds its own."""
    pool = PrewarmedWorkerPool(2, worker_env(**POOL_ENV))
    try:
        pool.wait_ready(2)
        watch = run_pooled_job(project, pool, processes=2)
        assert watch.max_db.get(pool.proc.pid, 0) == 0, "the parent kept its pool open across the fork"
        report("zenith_worker forked from a parent with an open pool", watch)
    finally:
        pool.stop()


# --- `make run`: manage.py zenith_up end to end -------------------------------------------

def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


class ZenithUp:
    """`manage.py zenith_up` in its own session, on a fresh embedded SQLite under tmp_path."""

    def __init__(self, tmp_path: Path, redis_url: str, demo_items: int):
        self.port = free_tcp_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.var = tmp_path / "var"
        self.log_path = tmp_path / "zenith_up.log"
        env = {**os.environ, "REDIS_URL": redis_url, "ZENITH_VAR_DIR": str(self.var), "ZENITH_LOG_FORMAT": "text",
               "ZENITH_ADMIN_PASSWORD": "up-e2e-pw", "PYTHONUNBUFFERED": "1"}
        for name in ("DATABASE_URL", "ZENITH_UP_CHILD", "PROMETHEUS_MULTIPROC_DIR", "ZENITH_DATA_TYPES_JSON"):
            env.pop(name, None)
        self.started = time.monotonic()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "zenith_up", "--port", str(self.port), "--workers", "1",
                 "--demo-items", str(demo_items)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.seen: dict[int, tuple[float, str]] = {}

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"zenith_up exited: {self.text()[-3000:]}"
            if http_get(f"{self.base}/readyz")[0] == 200:
                assert http_get(f"{self.base}/healthz")[0] == 200
                return time.monotonic() - self.started
            time.sleep(0.3)
        raise AssertionError(f"/readyz not 200 after {timeout}s: {http_get(f'{self.base}/readyz')}\n"
                             f"{self.text()[-3000:]}")

    def record_tree(self) -> dict[str, list[int]]:
        """Every descendant, remembered by pid and start time (so a reused pid is not
        mistaken for a survivor), grouped by role."""
        roles: dict[str, list[int]] = {}
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmdline = " ".join(proc.cmdline())
                self.seen[proc.pid] = (proc.create_time(), cmdline)
            except psutil.Error:
                continue
            for role in ("valkey-server", "gunicorn", "zenith_worker", "zenith_scheduler", "zenith_up"):
                if role in cmdline:
                    roles.setdefault(role, []).append(proc.pid)
                    break
        return roles

    def survivors(self) -> list[str]:
        alive = []
        for pid, (created, cmdline) in self.seen.items():
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {cmdline}")
            except psutil.Error:
                continue
        return alive

    def wait_all_gone(self, timeout: float) -> float:
        started = time.monotonic()
        deadline = started + timeout
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"zenith_up still running {timeout}s after the signal: "
                                 f"{self.text()[-3000:]}") from None
        while self.survivors() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not self.survivors(), f"left running: {self.survivors()}"
        return time.monotonic() - started

    def cleanup(self) -> None:
        """Whatever a failed test left: the process group, then the recorded pids."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid, (created, _) in self.seen.items():
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == created:
                    proc.kill()
            except psutil.Error:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


@pytest.mark.integration
@pytest.mark.heavy  # always a fresh SQLite, whichever database the suite runs on: once is enough
def test_make_run_starts_everything_runs_the_demo_and_stops_cleanly(tmp_path, redis):
    """What `make run` runs, against this suite's Redis database and a fresh SQLite: web,
    worker pool and scheduler come up, /healthz and /readyz answer 200, both demo jobs are
    completed with exact counts (read through the API), and one SIGTERM to the main process
    stops every process it started."""
    up = ZenithUp(tmp_path, settings.REDIS_URL, demo_items=200)
    try:
        startup = up.wait_ready(45)
        demo_started = time.monotonic()
        deadline = demo_started + 45
        while "Red flags found" not in up.text():
            assert time.monotonic() < deadline, f"demo not finished: {up.text()[-3000:]}"
            assert up.proc.poll() is None, up.text()[-3000:]
            time.sleep(0.3)
        demo_seconds = time.monotonic() - demo_started
        demo = re.findall(r"Demo (\w+) job: ([\d,]+) records .*? Watch it at \S+/jobs/([0-9a-f-]{36})/", up.text())
        assert [kind for kind, _, _ in demo] == ["transaction", "analysis"], up.text()[-3000:]

        with sqlite3.connect(up.var / "zenith.sqlite3", timeout=10) as db:
            token = db.execute("SELECT key FROM authtoken_token JOIN auth_user ON auth_user.id = user_id "
                               "WHERE username = 'admin'").fetchone()[0]
        for kind, total, job_id in demo:
            status, body = http_get(f"{up.base}/api/v1/batch-jobs/{job_id}/", token)
            assert status == 200, body[:500]
            job = json.loads(body)
            assert job["status"] == "completed" and job["data_type"] == kind, job
            assert int(total.replace(",", "")) == job["total_items"] == 200
            assert job["items_processed"] + job["items_failed"] + job["items_skipped"] == 200, job

        roles = up.record_tree()
        assert {"gunicorn", "zenith_worker", "zenith_scheduler"} <= roles.keys(), roles
        assert len(roles["gunicorn"]) >= 3, roles  # the master and its 2 workers
        assert len(roles["zenith_worker"]) >= 3, roles  # the pool, 1 worker, RQ's scheduler
        assert "valkey-server" not in roles, "a Redis answered; none should have been started"

        stop_started = time.monotonic()
        up.proc.send_signal(signal.SIGTERM)  # the main process only, as `kill` or systemd would
        stop_seconds = up.wait_all_gone(25)
        assert up.proc.returncode == 0, up.text()[-3000:]
        assert "Stopping Zenith" in up.text()
        print(f"zenith_up: /readyz 200 after {startup:.1f} s, demo (2 x 200 items) done {demo_seconds:.1f} s "
              f"later, {len(up.seen)} processes gone {stop_seconds:.1f} s after SIGTERM "
              f"(total {time.monotonic() - stop_started + demo_seconds + startup:.1f} s)")
    finally:
        up.cleanup()
        redis.flushdb()


@pytest.mark.integration
@pytest.mark.heavy  # a fresh SQLite and a Redis of its own, whatever the suite runs on
def test_make_run_starts_its_own_redis_when_none_answers_and_stops_it(tmp_path):
    """REDIS_URL on a closed loopback port: zenith_up starts the embedded Redis (Valkey),
    runs everything against it, and a Ctrl-C (SIGINT to the whole process group, as a
    terminal sends it) stops that server too."""
    closed = free_tcp_port()  # bound and released: nothing listens there
    up = ZenithUp(tmp_path, f"redis://127.0.0.1:{closed}/0", demo_items=0)
    try:
        startup = up.wait_ready(45)
        match = re.search(r"started an embedded one at (redis://127\.0\.0\.1:(\d+)/0)", up.text())
        assert match, up.text()[-3000:]
        embedded_url, embedded_port = match.group(1), int(match.group(2))
        roles = up.record_tree()
        assert len(roles.get("valkey-server", [])) == 1, roles
        assert {"gunicorn", "zenith_worker", "zenith_scheduler", "zenith_up"} <= roles.keys(), roles
        valkey = psutil.Process(roles["valkey-server"][0])
        assert any(conn.laddr.port == embedded_port for conn in valkey.net_connections(kind="tcp")
                   if conn.status == psutil.CONN_LISTEN)
        import redis as redis_lib

        assert redis_lib.Redis.from_url(embedded_url).ping()

        os.killpg(up.proc.pid, signal.SIGINT)  # Ctrl-C
        stop_seconds = up.wait_all_gone(25)
        assert up.proc.returncode == 0, up.text()[-3000:]
        with socket.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex(("127.0.0.1", embedded_port)) != 0, "the embedded Redis still listens"
        print(f"zenith_up with embedded Redis: /readyz 200 after {startup:.1f} s, {len(up.seen)} processes "
              f"(Valkey included) gone {stop_seconds:.1f} s after Ctrl-C")
    finally:
        up.cleanup()
