"""A real gunicorn web process for the tests that measure one: started on a free loopback port
against the test database (its own process group, stopped at the end), and its resident
memory sampled while a request runs."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil

from jobs.management.commands.zenith_up import free_port
from tests.conftest import ROOT, worker_env


@dataclasses.dataclass
class WebProcess:
    port: int
    process: psutil.Process  # the gunicorn worker that answers requests

    def connection(self, timeout: float = 300) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def rss(self) -> int:
        return self.process.memory_info().rss


@contextlib.contextmanager
def gunicorn(*, timeout: int = 300, **env_overrides) -> Iterator[WebProcess]:
    """One gunicorn worker (no threads), answered /healthz once before it is handed over."""
    port = free_port(18765)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "zenith.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--timeout", str(timeout)], cwd=ROOT, env=worker_env(**env_overrides),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/healthz")  # answered: the worker is up
        conn.getresponse().read()
        web = WebProcess(port, psutil.Process(server.pid).children()[0])
        yield web
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


class PeakRss:
    """Samples a process's RSS every 20 ms between enter and exit: `baseline` (at enter),
    `peak`, and `growth_mb`."""

    def __init__(self, process: psutil.Process):
        self.process = process
        self.baseline = self.peak = process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20
