"""Lifecycle events: one structured log line per event, with the job id and the correlation
id of the request that submitted the job, wherever the event happens (web, worker,
reconciler). Events: job.submitted, batch.started, batch.succeeded, batch.retrying,
batch.retry_scheduled, batch.dead_lettered, batch.deferred, batch.cancelled, batch.requeued,
batch.lease_lost, job.cancelled, job.retried, job.finalized."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("zenith.events")


def log_event(event: str, job: Any, message: str = "", level: int = logging.INFO, **fields: Any) -> None:
    """`job` is a ProcessingJob (or anything with `id` and `correlation_id`)."""
    logger.log(level, message or event.replace(".", " ").replace("_", " "), extra={
        "event": event, "job_id": str(job.id), "correlation_id": getattr(job, "correlation_id", "") or "-",
        **fields,
    })
