"""RQ entry points for periodic work (registered by monitoring.schedules)."""

from __future__ import annotations

from . import health, maintenance


def health_check() -> dict:
    return health.health_check().as_dict()


def cleanup_old_jobs() -> dict:
    return maintenance.cleanup_old_jobs()
