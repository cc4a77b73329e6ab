"""What the dashboard shows about the system (not about one job): queues, workers, breakers,
throttles, resources and alerts. Each part degrades to "unavailable" instead of failing."""

from __future__ import annotations

import logging
from typing import Any

from jobs.selectors.access import is_operator
from monitoring.models import Alert

logger = logging.getLogger(__name__)


def _safe(default: Any):
    def wrap(fn):
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception:
                logger.warning("dashboard part %s unavailable", fn.__name__, exc_info=True)
                return default
        inner.__name__ = fn.__name__
        return inner
    return wrap


@_safe(default=None)
def queue_depths() -> dict[str, int] | None:
    from monitoring.health import queue_depths as depths

    return depths()


@_safe(default=None)
def workers(user=None) -> list[dict] | None:
    """Workers and the batch each runs. Workers are shared by all projects, so a batch of a
    project the user is not a member of is only counted as `busy_elsewhere`: its data type and
    job stay hidden, as they are on every other page (operators, and `user=None`, see all)."""
    from rq import Worker

    from jobs.models import Batch, BatchStatus
    from zenith.infra.redis import get_redis

    running = {b.worker_name: b for b in Batch.objects.filter(status=BatchStatus.RUNNING).select_related("job")}
    visible: set[str] | None = None
    if user is not None and not is_operator(user):
        from jobs.selectors.core import visible_projects

        visible = set(visible_projects(user).values_list("id", flat=True))
    rows = []
    for worker in sorted(Worker.all(connection=get_redis()), key=lambda w: w.name):
        batch = running.get(worker.name)
        hidden = batch is not None and visible is not None and batch.job.project_id not in visible
        rows.append({"name": worker.name, "state": worker.get_state(), "hostname": worker.hostname,
                     "batch": None if hidden else batch, "busy_elsewhere": hidden,
                     "successful": worker.successful_job_count, "failed": worker.failed_job_count})
    return rows


@_safe(default=None)
def breakers_and_throttles() -> list[dict] | None:
    from jobs.datatypes.registry import registry
    from jobs.engine import breaker, throttle
    from zenith.infra.redis import get_redis

    redis = get_redis()
    rows = []
    for name, spec in sorted(registry().items()):
        rows.append({"data_type": name, "queue": spec.queue, "breaker": breaker.status(redis, name),
                     "throttle": throttle.state(redis, spec),
                     "rate_limit": str(spec.rate_limit) if spec.rate_limit else "",
                     "item_rate_limit": str(spec.item_rate_limit) if spec.item_rate_limit else ""})
    return rows


@_safe(default=None)
def resources():
    from zenith.infra.resources import current_resources, host_samples

    return {"latest": current_resources(), "hosts": host_samples()}


def recent_alerts(limit: int = 10) -> list[Alert]:
    return list(Alert.objects.order_by("-started_at")[:limit])


