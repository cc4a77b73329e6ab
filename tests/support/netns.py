"""Worker "hosts" for the partition test: Linux network namespaces joined to this machine by
veth pairs, and a small TCP proxy on the host end of each link that forwards to the
loopback-only PostgreSQL and Redis. Cutting a link (ip link set ... down) partitions a host
the way a dead switch port would: its TCP connections hang instead of failing fast."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Host:
    def __init__(self, name: str, subnet: str):
        self.name = name
        self.gateway = f"{subnet}.1"
        self.address = f"{subnet}.2"
        short = name.split("-")[-1][:4]
        self.outer, self.inner = f"zn{short}h", f"zn{short}n"
        self.process: subprocess.Popen | None = None
        self.log = None

    def create(self) -> None:
        self.destroy()
        _ip("netns", "add", self.name)
        _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        _ip("link", "set", self.inner, "netns", self.name)
        _ip("addr", "add", f"{self.gateway}/30", "dev", self.outer)
        _ip("link", "set", self.outer, "up")
        _ip("netns", "exec", self.name, "ip", "addr", "add", f"{self.address}/30", "dev", self.inner)
        _ip("netns", "exec", self.name, "ip", "link", "set", self.inner, "up")
        _ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")

    def start_workers(self, root: Path, env: dict, log_path: Path, processes: int = 1) -> None:
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, str(root / "manage.py"), "zenith_worker",
             "--processes", str(processes), "--max-jobs", "0"],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def worker_names(self) -> list[str]:
        if self.process is None:
            return []
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return []
        hostname = socket.gethostname()
        return [f"{hostname}.{child.pid}" for child in children]

    def cut_link(self) -> None:
        _ip("link", "set", self.outer, "down")

    def destroy(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        if self.log:
            self.log.close()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True)


class TcpProxy:
    """Forwards connections accepted on (listen_host, listen_port) to (target_host, target_port)."""

    def __init__(self, listen_host: str, listen_port: int, target_host: str, target_port: int):
        self.listen = (listen_host, listen_port)
        self.target = (target_host, target_port)
        self.server: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.stopped = threading.Event()

    def start(self) -> TcpProxy:
        self.server = socket.create_server(self.listen, reuse_port=True)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopped.set()
        if self.server:
            self.server.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
