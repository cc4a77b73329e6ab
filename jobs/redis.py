"""The Redis client Zenith's own code uses (queues, throttle, breaker, metrics, caches).

One client and connection pool per process and URL, sized by ZENITH_REDIS_MAX_CONNECTIONS.
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

_clients: dict[tuple[int, str], Redis] = {}
_lock = threading.Lock()


def get_redis() -> Redis:
    url = settings.REDIS_URL
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                pool = ConnectionPool.from_url(
                    url, max_connections=settings.REDIS_MAX_CONNECTIONS, socket_connect_timeout=5,
                    socket_keepalive=True, health_check_interval=30,
                )
                client = _clients[key] = Redis(connection_pool=pool)
    return client
