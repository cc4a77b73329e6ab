"""The Redis client Zenith's own code uses (queues, throttle, breaker, metrics, caches).

One client and connection pool per process and URL, sized by ZENITH_REDIS_MAX_CONNECTIONS.
The size is a hard cap: a process that would need one more connection gets
MaxConnectionsError at once, naming the setting (redis-py's ConnectionPool does not wait; a
worker uses 2 - its own and RQ's pubsub listener - and a web process one per busy thread).
django-rq's `get_connection` builds a new client, with a new pool and a new TCP connection,
on every call, and reads its settings once at import; the batch path talks to Redis several
times per batch, so it uses this shared client instead. Pools are per process: a forked
worker gets its own (redis-py also checks the pid).
"""

from __future__ import annotations

import os
import threading

from django.conf import settings
from redis import ConnectionPool, Redis
from redis.exceptions import MaxConnectionsError

_clients: dict[tuple[int, str], Redis] = {}


class _CappedPool(ConnectionPool):
    """redis-py's pool; exhausted, its "Too many connections" says which setting to look at."""

    def make_connection(self):
        try:
            return super().make_connection()
        except MaxConnectionsError as exc:
            raise MaxConnectionsError(
                f"all {self.max_connections} Redis connections of process {os.getpid()} are in use "
                f"(ZENITH_REDIS_MAX_CONNECTIONS={self.max_connections})") from exc


_lock = threading.Lock()


def get_redis() -> Redis:
    url = settings.REDIS_URL
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                pool = _CappedPool.from_url(
                    url, max_connections=settings.REDIS_MAX_CONNECTIONS, socket_connect_timeout=5,
                    socket_keepalive=True, health_check_interval=30,
                )
                client = _clients[key] = Redis(connection_pool=pool)
    return client
