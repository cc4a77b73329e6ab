"""The batch optimizer (docs/design.md, "Load"): batch size, per-job concurrency and pacing from load.

Rules: batches are 1.5x the data type's batch size whatever the CPU; CPU < 50 % -> 4
concurrent batches, 100 ms between batches; CPU > 80 % -> 2 concurrent, 500 ms; otherwise 3,
200 ms. Less than 2 GB of free memory halves the size and allows one batch fewer. Concurrency
is capped by the number of batches. It never samples CPU itself: it reads the cached sample
from zenith.infra.resources.

Changed from the original design (docs/design.md, "Load"): CPU load shrinks concurrency, never
the batch size. The original halved batches above 80 % CPU (and kept them at 1x between 50 and
80 %), which multiplies every per-batch cost (claim, commit, messages) exactly when the
machine has least to spare; fewer batches at once relieve the CPU, smaller ones do not.
Memory is different: a batch's memory is proportional to its size, so low memory still
halves it.
"""

from __future__ import annotations

import dataclasses

from django.conf import settings

from zenith.infra.resources import SystemResources, current_resources

CPU_THRESHOLD_LOW = 50.0
CPU_THRESHOLD_HIGH = 80.0
MEMORY_THRESHOLD_GB = 2.0


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    size: int
    concurrent_batches: int
    delay_between_batches_ms: int
    # True when an operator fixed the window (ZENITH_MAX_CONCURRENT_BATCHES): then it is a hard
    # cap; otherwise idle workers may widen it (jobs.engine.capacity).
    fixed_window: bool = False

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def calculate_batch_config(
    base_size: int, total_items: int | None = None, resources: SystemResources | None = None
) -> BatchConfig:
    resources = resources or current_resources()
    size = int(base_size * 1.5)
    if resources.cpu_percent < CPU_THRESHOLD_LOW:
        concurrent, delay = 4, 100
    elif resources.cpu_percent > CPU_THRESHOLD_HIGH:
        concurrent, delay = 2, 500
    else:
        concurrent, delay = 3, 200
    if resources.memory_available_gb < MEMORY_THRESHOLD_GB:
        size = int(size * 0.5)
        concurrent = max(1, concurrent - 1)
    size = max(1, size)
    fixed = bool(settings.ZENITH_MAX_CONCURRENT_BATCHES)
    if fixed:
        concurrent = settings.ZENITH_MAX_CONCURRENT_BATCHES
    if total_items is not None:
        concurrent = cap_concurrency(concurrent, total_items, size)
    delay = int(delay * settings.ZENITH_BATCH_DELAY_FACTOR)
    return BatchConfig(size=size, concurrent_batches=concurrent, delay_between_batches_ms=delay, fixed_window=fixed)


def cap_concurrency(concurrent: int, total_items: int, size: int) -> int:
    # The original design caps at total_items // size, which is 0 -> 1 for a single partial batch.
    batches = -(-total_items // size) if total_items else 1
    return max(1, min(concurrent, batches))
