"""gunicorn settings for Zenith's web process:

    gunicorn zenith.wsgi:application --config python:zenith.gunicorn_conf --bind 0.0.0.0:8000 --workers 2 --threads 4

Options on the command line (bind, workers, threads, timeout) override this file.

1. Prometheus multiprocess mode. gunicorn runs several worker processes and each keeps its
   own in-process counters (django-prometheus's django_http_*, django_db_*); without this a
   scrape would show whichever process answered it, so counters would jump up and down
   between scrapes. Here every process writes its values to files in
   PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory unless set; it must not be shared
   with another gunicorn master) and /metrics sums them (monitoring.views). Zenith's own
   zenith_* series do not need this: they are read from Redis and PostgreSQL at scrape time.
2. gunicorn's own log lines (start, workers booting and exiting, errors) go through Django's
   LOGGING (zenith/settings.py), so they are JSON lines like everything else, or text with
   ZENITH_LOG_FORMAT=text. No access log by default: /metrics has the request counts and
   latencies, and Zenith logs its own events. With --access-logfile (any value) each request
   is logged as a structured `http.access` event through the same handler.
3. The worker class is gthread's, but a request reaches a thread only once all of it has
   arrived (zenith/infra/gunicorn_worker.py): slow or stalled clients hold connections, never
   the threads, so /healthz and everyone else keep being answered. --threads sets how many
   complete requests a process works on at once.
"""

from __future__ import annotations

import copy
import logging
import logging.config
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn import glogging

# Before any worker imports prometheus_client: it picks its storage at import time.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenith.settings")
_OWN_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="zenith-prometheus-")

logger_class = "zenith.gunicorn_conf.DjangoLogger"
worker_class = "zenith.infra.gunicorn_worker.BufferedThreadWorker"
# gunicorn 23+'s control socket lives under $HOME, which the image's non-root user cannot
# write (it logged an error at every start); Zenith does not use it.
control_socket_disable = True


def on_starting(server) -> None:
    """Values left by a previous run of this master (a restarted container keeps /tmp) would
    be summed into the new counters: start from an empty directory."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink(missing_ok=True)


def on_exit(server) -> None:
    if _OWN_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def child_exit(server, worker) -> None:
    """A worker process ended: its live gauges stop counting (its counters stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class DjangoLogger(glogging.Logger):
    """gunicorn's loggers propagate to the root logger configured from Django's LOGGING
    instead of writing plain text lines of their own."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        from django.conf import settings

        config = copy.deepcopy(settings.LOGGING)
        config["disable_existing_loggers"] = False
        loggers = config.setdefault("loggers", {})
        loggers["gunicorn.error"] = {"level": logging.getLevelName(self.loglevel), "handlers": [], "propagate": True}
        loggers["gunicorn.access"] = {"level": "INFO", "handlers": [], "propagate": True}
        # dictConfig replaces the handlers gunicorn gave these two loggers in super().setup().
        logging.config.dictConfig(config)

    def _compute_access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            method, path, status = atoms["m"], atoms["U"], atoms["s"]
            self.access_log.info("%s %s %s", method, path, status, extra={
                "event": "http.access", "method": method, "path": path, "query": atoms["q"] or None,
                "status": int(status) if str(status).isdigit() else status,
                "duration_ms": round(atoms["D"] / 1000, 1), "bytes": atoms["B"], "remote_addr": atoms["h"],
                "user_agent": atoms["a"],
                "correlation_id": atoms.get("{x-correlation-id}o") or "-",
            })
        except Exception:
            self.exception("access log line failed")
