"""Django's cache, in Redis: shared by every web process, so per-user limits such as the
submission throttle count a user's requests across all of them (a per-process memory let each
gunicorn worker allow the whole rate again).

By default the cache lives in the queues' Redis database under its own key prefix
(ZENITH_CACHE_URL, ZENITH_CACHE_KEY_PREFIX). Django's `RedisCache.clear()` runs FLUSHDB, which
there would also drop every queued message; this one deletes only the cache's own keys.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache


class PrefixedRedisCache(RedisCache):
    SCAN_COUNT = 1000

    def clear(self) -> bool:
        client = self._cache.get_client(None, write=True)
        # Django's key function writes "<prefix>:<version>:<key>": every version of every key.
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{self.key_prefix}:*", count=self.SCAN_COUNT):
            batch.append(key)
            if len(batch) >= self.SCAN_COUNT:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
        return True
