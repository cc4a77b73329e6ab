"""Per-user request rates (DRF's scoped throttle), counted in Django's cache: Redis, shared by
every web process (zenith/infra/cache.py), so one user's limit holds however many processes
serve them.

When Redis does not answer, the request goes through and a warning is logged: a rate limit
protects the service, it must not become the reason it is down. PostgreSQL stays the truth and
the submission itself does not need Redis to be accepted (docs/design.md, "PostgreSQL is the
truth; Redis is a cache")."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)


class SharedScopedRateThrottle(ScopedRateThrottle):
    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError):
            logger.warning("throttle %s not applied: its Redis cache is unavailable",
                           getattr(view, "throttle_scope", "?"), exc_info=True)
            return True
