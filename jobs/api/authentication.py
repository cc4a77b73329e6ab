"""Token authentication with a short per-process memory of tokens already checked.

Every open job page polls the status endpoint every ~2 s, so the token lookup was a
database query on most API requests. A token seen within ZENITH_TOKEN_CACHE_SECONDS is
trusted again without one; deleting a token or deactivating a user therefore takes effect
within that many seconds (0 turns the memory off).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from rest_framework.authentication import TokenAuthentication

_seen: dict[str, tuple[float, object, object]] = {}
_lock = threading.Lock()
MAX_ENTRIES = 10_000


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        ttl = settings.ZENITH_TOKEN_CACHE_SECONDS
        now = time.monotonic()
        if ttl:
            hit = _seen.get(key)
            if hit and hit[0] > now:
                return hit[1], hit[2]
        user, token = super().authenticate_credentials(key)
        if ttl:
            with _lock:
                if len(_seen) >= MAX_ENTRIES:
                    _seen.clear()
                _seen[key] = (now + ttl, user, token)
        return user, token


def forget_tokens() -> None:
    _seen.clear()
