"""What monitoring needs to know about the work it watches, supplied by the app that owns it.

`monitoring` imports nothing from `jobs` (docs/design.md, "Apps and layers"): the jobs app
registers here, from its `AppConfig.ready()`, the backlog it wants alerted on, the breakers
whose alerts may need resolving, its Prometheus collector and its periodic tasks. Until
something is registered, monitoring reports an empty backlog and no breakers, so the health
check still runs in a process that has only the monitoring app.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A periodic RQ task: `func` is the dotted path of the function the worker runs."""

    id: str
    func: str
    queue: str
    cron: str | None = None
    interval: int | None = None
    timeout: int = 600


@dataclasses.dataclass
class _Registry:
    backlog: Callable[[], dict[str, int]] | None = None
    breaker_closed: Callable[[str], bool] | None = None
    collectors: list[Any] = dataclasses.field(default_factory=list)
    schedules: dict[str, Callable[[], Schedule]] = dataclasses.field(default_factory=dict)


_registry = _Registry()


def register_backlog(provider: Callable[[], dict[str, int]]) -> None:
    """`provider()` returns {"batches": n, "items": n} of work not yet ended."""
    _registry.backlog = provider


def register_breaker_check(is_closed: Callable[[str], bool]) -> None:
    """`is_closed(name)` says whether the circuit breaker called `name` is closed now."""
    _registry.breaker_closed = is_closed


def register_collector(collector: Any) -> None:
    """A prometheus_client collector to add to every registry monitoring exports."""
    if not any(type(existing) is type(collector) for existing in _registry.collectors):
        _registry.collectors.append(collector)


def register_schedule(build: Callable[[], Schedule]) -> None:
    """`build()` is called whenever the schedules are read, so it may read settings."""
    schedule = build()
    _registry.schedules[schedule.id] = build


def backlog() -> dict[str, int]:
    return _registry.backlog() if _registry.backlog else {"batches": 0, "items": 0}


def breaker_is_closed(name: str) -> bool:
    return _registry.breaker_closed(name) if _registry.breaker_closed else True


def collectors() -> list[Any]:
    return list(_registry.collectors)


def registered_schedules() -> list[Schedule]:
    return [build() for build in _registry.schedules.values()]
