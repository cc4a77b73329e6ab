"""Cluster-wide rate limits per data type: a GCRA in one Redis Lua script.

Celery's `rate_limit='10/m'` is enforced by each worker on its own, so ten workers run 100
batches a minute. Here every worker on every host asks the same Redis key, and Redis's own
clock (`TIME`) orders the requests, so the limit holds for the whole cluster.

GCRA keeps one timestamp per key, the theoretical arrival time (TAT). A request of cost `c`
may start at `max(TAT - tau, now)`, where `tau = (burst - 1) * T` and `T` is the emission
interval (period / count); it then moves TAT forward by `c * T`. A caller willing to wait
up to `max_wait` seconds *reserves* its slot (TAT moves) and sleeps until it; a caller that
would wait longer reserves nothing and is told when to come back, so throttled batches are
rescheduled instead of spinning, and they never use up a retry.

Batches and items can be limited at once (`10/m` batches and `5000/s` items): the script
checks both keys and reserves on both or neither.

If Redis is flushed the keys vanish and the limit restarts with a fresh burst: the state is a
cache, never the truth.
"""

from __future__ import annotations

import dataclasses
import time

from redis import Redis

from jobs.datatypes.registry import DataTypeSpec, Rate

KEY = "zenith:throttle:{name}:{unit}"

# KEYS: batch key, item key. ARGV: batch T (us), batch tau (us), item T (us), item tau (us),
# item cost, max wait (us). T = 0 disables that limit. Returns wait in microseconds and
# whether the slot was reserved.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = tonumber(ARGV[6])
local start = now
local plans = {}
for i = 1, 2 do
  local T = tonumber(ARGV[(i - 1) * 2 + 1])
  if T > 0 then
    local tau = tonumber(ARGV[(i - 1) * 2 + 2])
    local cost = 1
    if i == 2 then cost = tonumber(ARGV[5]) end
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then tat = now end
    local allowed_at = tat - tau
    if allowed_at > start then start = allowed_at end
    plans[i] = {tat, T * cost, tau}
  end
end
local wait = start - now
if wait > max_wait then
  return {wait, 0}
end
for i = 1, 2 do
  local plan = plans[i]
  if plan then
    local new_tat = plan[1] + plan[2]
    if new_tat < start + plan[2] then new_tat = start + plan[2] end
    local ttl = math.ceil((new_tat - now) / 1000) + plan[3] / 1000 + 1000
    redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', math.floor(ttl))
  end
end
return {wait, 1}
"""


@dataclasses.dataclass(frozen=True)
class ThrottleDecision:
    wait_seconds: float
    reserved: bool

    @property
    def allowed_now(self) -> bool:
        return self.reserved and self.wait_seconds <= 0


def _interval_us(rate: Rate | None) -> int:
    return 0 if rate is None else max(1, int(rate.period * 1_000_000 / rate.count))


def acquire(redis: Redis, spec: DataTypeSpec, items: int, max_wait: float) -> ThrottleDecision:
    """Asks for one batch of `items` items of this data type. With `reserved`, the caller may
    start after sleeping `wait_seconds`; without, it should come back in `wait_seconds`."""
    if spec.rate_limit is None and spec.item_rate_limit is None:
        return ThrottleDecision(0.0, True)
    batch_t = _interval_us(spec.rate_limit)
    item_t = _interval_us(spec.item_rate_limit)
    burst = max(1, spec.burst)
    keys = [KEY.format(name=spec.name, unit="batches"), KEY.format(name=spec.name, unit="items")]
    args = [batch_t, (burst - 1) * batch_t, item_t, (burst - 1) * item_t * max(1, items), max(0, items),
            int(max_wait * 1_000_000)]
    wait_us, reserved = redis.eval(_GCRA, 2, *keys, *args)
    return ThrottleDecision(max(0.0, int(wait_us) / 1_000_000), bool(reserved))


def wait_for_slot(redis: Redis, spec: DataTypeSpec, items: int, max_wait: float) -> ThrottleDecision:
    """Acquires a slot, sleeping for it when the wait is short. Returns the decision; when
    not reserved the caller must reschedule the batch `wait_seconds` from now."""
    decision = acquire(redis, spec, items, max_wait)
    if decision.reserved and decision.wait_seconds > 0:
        time.sleep(decision.wait_seconds)
    return decision


def state(redis: Redis, spec: DataTypeSpec) -> dict:
    """For dashboards: how far ahead of now each limit's TAT is (0 = idle)."""
    now_s, now_us = redis.time()
    now = now_s * 1_000_000 + now_us
    result = {}
    for unit, rate in (("batches", spec.rate_limit), ("items", spec.item_rate_limit)):
        if rate is None:
            continue
        raw = redis.get(KEY.format(name=spec.name, unit=unit))
        ahead = max(0, int(float(raw)) - now) / 1_000_000 if raw else 0.0
        result[unit] = {"limit": str(rate), "backlog_seconds": round(ahead, 3)}
    return result
