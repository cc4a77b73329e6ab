"""Resource sensing with psutil, cached in Redis so nobody blocks on a sample.

The original design sampled `cpu_percent(interval=1)` and `cpu_times_percent(interval=1)` on every
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
HOSTS_KEY = "zenith:resources:hosts"  # host -> its latest sample, for per-host views


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
    from zenith.infra.redis import get_redis

    try:
        encoded = json.dumps(dataclasses.asdict(sample))
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(LATEST_KEY, encoded, ex=settings.ZENITH_RESOURCE_SAMPLE_TTL)
        pipe.hset(HOSTS_KEY, sample.host, encoded)
        pipe.expire(HOSTS_KEY, settings.ZENITH_RESOURCE_SAMPLE_TTL)
        pipe.execute()
    except Exception:  # Redis down: the optimizer falls back to local samples
        logger.warning("could not publish resource sample", exc_info=True)


def current_resources() -> SystemResources:
    """The latest published sample, else a local one. Never blocks on psutil."""
    from zenith.infra.redis import get_redis

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


def host_samples(max_age: float = 120.0) -> dict[str, SystemResources]:
    """The latest sample of every host that published one within `max_age` seconds."""
    from zenith.infra.redis import get_redis

    now = time.time()
    result = {}
    for host, raw in get_redis().hgetall(HOSTS_KEY).items():
        try:
            sample = SystemResources(**json.loads(raw))
        except (TypeError, ValueError):
            continue
        if now - sample.sampled_at <= max_age:
            result[host.decode() if isinstance(host, bytes) else host] = sample
    return result


WORKERS_KEY = "zenith:resources:workers"  # worker name -> its process CPU and RSS
_process = psutil.Process()


def publish_worker_process(worker_name: str) -> None:
    """Each worker publishes its own process's CPU and resident memory."""
    from zenith.infra.redis import get_redis

    try:
        sample = {"cpu_percent": _process.cpu_percent(interval=None), "rss_bytes": _process.memory_info().rss,
                  "sampled_at": time.time()}
        pipe = get_redis().pipeline(transaction=False)
        pipe.hset(WORKERS_KEY, worker_name, json.dumps(sample))
        pipe.expire(WORKERS_KEY, settings.ZENITH_RESOURCE_SAMPLE_TTL)
        pipe.execute()
    except Exception:
        logger.debug("could not publish worker sample", exc_info=True)


def worker_process_samples(max_age: float = 120.0) -> dict[str, dict]:
    from zenith.infra.redis import get_redis

    now = time.time()
    result = {}
    for name, raw in get_redis().hgetall(WORKERS_KEY).items():
        try:
            sample = json.loads(raw)
        except ValueError:
            continue
        if now - sample.get("sampled_at", 0) <= max_age:
            result[name.decode() if isinstance(name, bytes) else name] = sample
    return result
