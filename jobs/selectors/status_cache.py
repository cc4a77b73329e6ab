"""Answers to status polls, kept for ZENITH_STATUS_CACHE_SECONDS.

Clients and job pages poll `GET /api/v1/batch-jobs/{id}` every second or two, and while a
large job runs PostgreSQL is busy with the workers' inserts: a poll that needs a query waits
behind them (most of a slow poll was that wait: docs/performance.md). So:

- the job's serialized status is kept in Redis for ZENITH_STATUS_CACHE_SECONDS (default 1 s),
  shared by every web process, so a poll costs PostgreSQL one query per job per second
  however many clients poll it;
- which user may read which job is remembered in this process for
  ZENITH_TOKEN_CACHE_SECONDS, the same trade-off as the token memory (a removed member keeps
  read access to a job's status that long);
- writes through the API (cancel, retry) drop the entry at once, so the client that made
  them reads its own write; progress made by workers shows up within the TTL.

PostgreSQL stays the source of truth: the entry is a copy with a short life, and when Redis
is unavailable polls go to PostgreSQL as before. 0 turns it off.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

logger = logging.getLogger(__name__)

KEY = "zenith:status:{job_id}"
MAX_READERS = 10_000

_readers: dict[tuple[Any, str], float] = {}
_lock = threading.Lock()


def _ttl() -> float:
    return float(settings.ZENITH_STATUS_CACHE_SECONDS)


def _key(job_id: Any) -> str:
    return KEY.format(job_id=str(job_id).lower())


def fetch(user: Any, job_id: Any) -> dict | None:
    """The cached status, if this user was recently allowed to read this job and a copy is
    fresh; otherwise None (the caller reads PostgreSQL and calls `store`)."""
    if not _ttl() or not getattr(user, "is_authenticated", False):
        return None
    if _readers.get((user.pk, str(job_id).lower()), 0.0) <= time.monotonic():
        return None
    try:
        from zenith.infra.redis import get_redis

        raw = get_redis().get(_key(job_id))
    except Exception:
        logger.debug("status cache unavailable", exc_info=True)
        return None
    return json.loads(raw) if raw else None


def store(user: Any, job_id: Any, data: dict) -> None:
    """Remembers that `user` may read `job_id` and keeps `data` (what PostgreSQL just said)."""
    ttl = _ttl()
    if not ttl or not getattr(user, "is_authenticated", False):
        return
    with _lock:
        if len(_readers) >= MAX_READERS:
            _readers.clear()
        _readers[(user.pk, str(job_id).lower())] = time.monotonic() + settings.ZENITH_TOKEN_CACHE_SECONDS
    try:
        from zenith.infra.redis import get_redis

        get_redis().set(_key(job_id), json.dumps(data, cls=DjangoJSONEncoder), px=max(1, int(ttl * 1000)))
    except Exception:
        logger.debug("status cache unavailable", exc_info=True)


def drop(job_id: Any) -> None:
    """A write through the API changed the job: the next poll reads PostgreSQL."""
    try:
        from zenith.infra.redis import get_redis

        get_redis().delete(_key(job_id))
    except Exception:
        logger.debug("status cache unavailable", exc_info=True)


def forget_readers() -> None:
    _readers.clear()
