"""Resource sensing with psutil, cached in Redis so nobody blocks on a sample.

The seed samples `cpu_percent(interval=1)` and `cpu_times_percent(interval=1)` on every
submission: two seconds of sleep per request. Here the health check and every worker publish
a sample to Redis; readers take the freshest one and fall back to a non-blocking local sample
(psutil measures since its previous call in this process).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import time

import psutil
from django.conf import settings

logger = logging.getLogger(__name__)

LATEST_KEY = "zenith:resources:latest"


@dataclasses.dataclass
class SystemResources:
    cpu_percent: float
    memory_available_gb: float
    disk_io_wait: float
    host: str = ""
    sampled_at: float = 0.0


# Prime psutil's per-process counters so the first non-blocking call means something.
psutil.cpu_percent(interval=None)
psutil.cpu_times_percent(interval=None)


def sample_local() -> SystemResources:
    """A non-blocking sample: CPU and I/O wait since the previous call in this process."""
    cpu = psutil.cpu_percent(interval=None)
    times = psutil.cpu_times_percent(interval=None)
    return SystemResources(
        cpu_percent=float(cpu),
        memory_available_gb=psutil.virtual_memory().available / (1024 ** 3),
        disk_io_wait=float(getattr(times, "iowait", 0.0)),
        host=socket.gethostname(),
        sampled_at=time.time(),
    )


def publish(sample: SystemResources) -> None:
    from jobs.redis import get_redis

    try:
        get_redis().set(LATEST_KEY, json.dumps(dataclasses.asdict(sample)), ex=settings.ZENITH_RESOURCE_SAMPLE_TTL)
    except Exception:  # Redis down: the optimizer falls back to local samples
        logger.warning("could not publish resource sample", exc_info=True)


def current_resources() -> SystemResources:
    """The latest published sample, else a local one. Never blocks on psutil."""
    from jobs.redis import get_redis

    try:
        raw = get_redis().get(LATEST_KEY)
    except Exception:
        raw = None
    if raw:
        try:
            return SystemResources(**json.loads(raw))
        except (TypeError, ValueError):
            pass
    return sample_local()
