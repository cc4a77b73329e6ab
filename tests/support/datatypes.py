"""Data types used only by the tests: real handlers whose failures are switched on by the
records themselves (or by a Redis key, for faults that are "removed" mid-test)."""

from __future__ import annotations

import time

from django.db import OperationalError

from jobs.datatypes.base import BatchContext
from jobs.datatypes.transaction import TransactionHandler
from zenith.infra.redis import get_redis

FAULT_KEY = "zenith:test:fault:{name}"

TEST_DATA_TYPES = {
    "probe": {"handler": "tests.support.datatypes.ProbeHandler", "queue": "default", "batch_size": 100},
    # Short time limits for the time-limit scenarios (hard 3 s, soft 1 s).
    "slow": {"handler": "tests.support.datatypes.ProbeHandler", "queue": "default", "batch_size": 20, "time_limit": 3,
             "soft_time_limit": 1},
}


class ProbeHandler(TransactionHandler):
    """A transaction handler with switches in the record:
    - `sleep_ms`: sleep this long while validating the item;
    - `slow_until_attempt` + `slow_ms`: sleep `slow_ms` while the attempt is below it;
    - `raise_until_attempt`: raise (a system error) while the batch's attempt is below it;
    - `poison`: always raise;
    - `batch_fail_until_attempt`: fail the whole batch (a lost database connection) while
      the attempt is below it;
    - `fault`: raise while the Redis key zenith:test:fault:<fault> exists;
    - `batch_fault`: fail the whole batch while the Redis key zenith:test:fault:<batch_fault> exists.
    """

    def validate(self, record: dict, ctx: BatchContext):
        if record.get("sleep_ms"):
            time.sleep(float(record["sleep_ms"]) / 1000)
        slow_until = record.get("slow_until_attempt")
        if slow_until and ctx.attempt < int(slow_until):
            time.sleep(float(record.get("slow_ms", 0)) / 1000)
        if record.get("poison"):
            raise RuntimeError(f"poison item {record.get('id')}")
        until = record.get("raise_until_attempt")
        if until and ctx.attempt < int(until):
            raise ConnectionError(f"transient failure on attempt {ctx.attempt}")
        batch_until = record.get("batch_fail_until_attempt")
        if batch_until and ctx.attempt < int(batch_until):
            raise OperationalError(f"simulated lost connection on attempt {ctx.attempt}")
        batch_fault = record.get("batch_fault")
        if batch_fault and get_redis().exists(FAULT_KEY.format(name=batch_fault)):
            raise OperationalError(f"injected batch fault {batch_fault}")
        fault = record.get("fault")
        if fault and get_redis().exists(FAULT_KEY.format(name=fault)):
            raise RuntimeError(f"injected fault {fault}")
        return super().validate(record, ctx)
