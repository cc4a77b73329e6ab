"""The data-type registry: one entry per kind of record, saying who handles it and how hard
the cluster may push it.

Built-ins keep the original design's values (docs/design.md): queues per kind of work, and
default batch sizes transaction 500, entity 200, embedding 100, reconciliation 300, anything
else 250; `analysis` takes 500 like
`transaction`, as its per-record rules cost about as much as ingestion. A deploying team adds or
overrides entries through `settings.ZENITH_DATA_TYPES` (env `ZENITH_DATA_TYPES_JSON`); every
field not given falls back to the defaults below.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from jobs.datatypes.base import Handler
from jobs.errors import UnknownDataType

DEFAULT_BATCH_SIZE = 250

BUILTIN_DATA_TYPES: dict[str, dict[str, Any]] = {
    "transaction": {
        "handler": "jobs.datatypes.transaction.TransactionHandler",
        "queue": "ingestion",
        "batch_size": 500,
        "description": "Ledger or bank transactions: validated, normalised and stored once per id.",
    },
    "analysis": {
        "handler": "jobs.datatypes.analysis.AnalysisHandler",
        "queue": "analysis",
        "batch_size": 500,
        "description": "Transactions screened for red flags: round and just-below-threshold amounts, weekend and "
                       "holiday postings, duplicate payments, per-account outliers, Benford's law.",
    },
    "entity": {
        "handler": "jobs.datatypes.entity.EntityHandler",
        "queue": "analysis",
        # 500, not the original design's 200: a name costs microseconds, so 200-name batches
        # spent most of their time on the per-batch bookkeeping (docs/performance.md).
        "batch_size": 500,
        "description": "Counterparty and entity names: normalised, keyed and grouped with their near-duplicates.",
    },
    "embedding": {
        "handler": "jobs.datatypes.embedding.EmbeddingHandler",
        "queue": "embedding",
        # 400, not the original design's 100: a text costs about 0.14 ms, so 100-text batches
        # spent a third of their time on the per-batch bookkeeping (docs/performance.md).
        "batch_size": 400,
        "description": "Texts vectorised offline (hashed character n-grams); near-duplicates found.",
    },
    "reconciliation": {
        "handler": "jobs.datatypes.reconciliation.ReconciliationHandler",
        "queue": "reconciliation",
        "batch_size": 300,
        "description": "Bank-statement lines matched against the project's ledger.",
    },
}


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*([a-z]+)\s*$")
_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}


@dataclasses.dataclass(frozen=True)
class Rate:
    """`count` events per `period` seconds, parsed from strings like `10/m` or `500/s`."""

    count: float
    period: float

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        return f"{self.count:g}/{self.period:g}s"


def parse_rate(text: str | None) -> Rate | None:
    if text in (None, "", "0"):
        return None
    match = _RATE.match(str(text).lower())
    if not match or match.group(3) not in _UNITS:
        raise ValueError(f"Invalid rate '{text}': use forms like 10/m, 500/s, 100/h or 30/5s.")
    count = float(match.group(1))
    multiplier = int(match.group(2)) if match.group(2) else 1
    if count <= 0 or multiplier <= 0:
        raise ValueError(f"Invalid rate '{text}': the count and period must be positive.")
    return Rate(count=count, period=float(_UNITS[match.group(3)] * multiplier))


@dataclasses.dataclass(frozen=True)
class DataTypeSpec:
    name: str
    handler_path: str
    queue: str = "default"
    batch_size: int = DEFAULT_BATCH_SIZE
    rate_limit: Rate | None = None  # batches, across the whole cluster
    item_rate_limit: Rate | None = None  # items, across the whole cluster
    burst: int = 1
    time_limit: int = 300
    soft_time_limit: int = 240
    max_retries: int = 3
    description: str = ""

    @functools.cached_property
    def handler(self) -> Handler:
        handler = import_string(self.handler_path)
        return handler() if isinstance(handler, type) else handler


def _build(name: str, raw: dict[str, Any]) -> DataTypeSpec:
    if raw.get("queue", "default") not in settings.ZENITH_BASE_QUEUES:
        raise ValueError(
            f"Data type '{name}': queue must be one of {', '.join(settings.ZENITH_BASE_QUEUES)}."
        )
    time_limit = int(raw.get("time_limit", settings.ZENITH_TIME_LIMIT))
    return DataTypeSpec(
        name=name,
        handler_path=raw["handler"],
        queue=raw.get("queue", "default"),
        batch_size=int(raw.get("batch_size", DEFAULT_BATCH_SIZE)),
        rate_limit=parse_rate(raw.get("rate_limit")),
        item_rate_limit=parse_rate(raw.get("item_rate_limit")),
        burst=max(1, int(raw.get("burst", 1))),
        time_limit=time_limit,
        soft_time_limit=min(int(raw.get("soft_time_limit", settings.ZENITH_SOFT_TIME_LIMIT)), time_limit),
        max_retries=int(raw.get("max_retries", settings.ZENITH_MAX_RETRIES)),
        description=raw.get("description", ""),
    )


@functools.lru_cache(maxsize=1)
def _registry_for(config_key: str) -> dict[str, DataTypeSpec]:
    merged: dict[str, dict[str, Any]] = {name: dict(raw) for name, raw in BUILTIN_DATA_TYPES.items()}
    for name, raw in (settings.ZENITH_DATA_TYPES or {}).items():
        merged[name] = {**merged.get(name, {}), **raw}
    return {name: _build(name, raw) for name, raw in merged.items()}


def registry() -> dict[str, DataTypeSpec]:
    # Keyed on the configuration so that settings overrides in tests take effect.
    return _registry_for(repr(sorted((settings.ZENITH_DATA_TYPES or {}).items())) + repr(
        (settings.ZENITH_TIME_LIMIT, settings.ZENITH_SOFT_TIME_LIMIT, settings.ZENITH_MAX_RETRIES)
    ))


def known_data_types() -> list[str]:
    return sorted(registry())


def get_data_type(name: str) -> DataTypeSpec:
    try:
        return registry()[name]
    except KeyError:
        raise UnknownDataType(name, known_data_types()) from None
