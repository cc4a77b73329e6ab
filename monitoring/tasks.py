"""RQ entry points for periodic work (registered by monitoring.schedules)."""

from __future__ import annotations

from monitoring import health


def health_check() -> dict:
    return health.health_check().as_dict()
