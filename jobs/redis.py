"""The one Redis connection Zenith's own code uses (queues, throttle, breaker, caches)."""

from __future__ import annotations

import django_rq
from redis import Redis


def get_redis() -> Redis:
    return django_rq.get_connection("default")


KEY_PREFIX = "zenith:"
