"""Circuit breaker per data type (docs/design.md, "Load": stop above 50 % errors, recover after a cooldown).

closed -> open when, over the last `ZENITH_BREAKER_WINDOW_SECONDS`, at least
`ZENITH_BREAKER_MIN_VOLUME` items were attempted and more than `ZENITH_BREAKER_ERROR_RATE`
of them failed *by the system* (an exception, a timeout, a lost worker). Records rejected by
validation are the data's fault and do not count at all, so a file full of bad rows never
stops anybody else's jobs.

While open, workers do not start batches of that type: the batch is deferred to the end of
the cooldown (no attempt is used) and submissions of that type are refused with 429. After
the cooldown exactly one probe batch runs (half-open); its success closes the breaker, its
failure re-opens it for another cooldown. An operator may force a breaker open or closed.

State lives in Redis and is a cache: after a flush every breaker is closed, and re-opens if
the errors continue. All transitions happen inside Lua scripts, so concurrent workers on any
host agree on them.
"""

from __future__ import annotations

import dataclasses
import time

from django.conf import settings
from redis import Redis

STATE_KEY = "zenith:breaker:{name}"
WINDOW_KEY = "zenith:breaker:{name}:window"
BUCKET_SECONDS = 5

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# KEYS: state, window. ARGV: ok, err, window s, bucket s, min volume, threshold, is_probe.
# Returns {transition, state, error_rate*1e6, volume}.
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ok, err = tonumber(ARGV[1]), tonumber(ARGV[2])
local window, bucket = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local forced = redis.call('HGET', KEYS[1], 'forced') or ''
if ARGV[7] == '1' then
  if err > 0 or ok == 0 then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'reason', 'probe batch failed')
    redis.call('HDEL', KEYS[1], 'probe_until')
    return {'reopened', 'open', 0, 0}
  end
  redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', now, 'reason', '')
  redis.call('HDEL', KEYS[1], 'probe_until', 'opened_at')
  redis.call('DEL', KEYS[2])
  return {'closed', 'closed', 0, 0}
end
local current = math.floor(now / bucket)
if ok > 0 then redis.call('HINCRBY', KEYS[2], current .. ':ok', ok) end
if err > 0 then redis.call('HINCRBY', KEYS[2], current .. ':err', err) end
redis.call('EXPIRE', KEYS[2], window * 2)
local oldest = current - math.ceil(window / bucket) + 1
local total_ok, total_err = 0, 0
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local b, kind = string.match(fields[i], '^(%d+):(%a+)$')
  b = tonumber(b)
  if b == nil or b < oldest then
    redis.call('HDEL', KEYS[2], fields[i])
  elseif kind == 'ok' then
    total_ok = total_ok + tonumber(fields[i + 1])
  else
    total_err = total_err + tonumber(fields[i + 1])
  end
end
local volume = total_ok + total_err
local rate = 0
if volume > 0 then rate = total_err / volume end
if state == 'closed' and forced == '' and volume >= tonumber(ARGV[5]) and rate > tonumber(ARGV[6]) then
  local reason = string.format('%.0f%% of %d items failed in the last %ds', rate * 100, volume, window)
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'reason', reason)
  return {'opened', 'open', math.floor(rate * 1000000), volume}
end
return {'', state, math.floor(rate * 1000000), volume}
"""

# KEYS: state. ARGV: cooldown s, probe lease s. Returns {allowed, probe, retry_after_ms, state}.
_ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local forced = redis.call('HGET', KEYS[1], 'forced') or ''
if forced == 'closed' then return {1, 0, 0, 'closed'} end
local cooldown = tonumber(ARGV[1])
if forced == 'open' then return {0, 0, math.floor(cooldown * 1000), 'open'} end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, 0, 0, 'closed'} end
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or now)
  local remaining = opened + cooldown - now
  if remaining > 0 then return {0, 0, math.floor(remaining * 1000), 'open'} end
end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or 0)
if state == 'half_open' and probe_until > now then
  return {0, 0, math.min(5000, math.floor((probe_until - now) * 1000)), 'half_open'}
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[2]))
return {1, 1, 0, 'half_open'}
"""


@dataclasses.dataclass(frozen=True)
class BreakerDecision:
    allowed: bool
    probe: bool
    retry_after: float
    state: str


@dataclasses.dataclass(frozen=True)
class BreakerTransition:
    event: str  # "", "opened", "closed", "reopened"
    state: str
    error_rate: float
    volume: int


def allow(redis: Redis, name: str, probe_lease: float) -> BreakerDecision:
    allowed, probe, retry_ms, state = redis.eval(
        _ALLOW, 1, STATE_KEY.format(name=name), settings.ZENITH_BREAKER_COOLDOWN_SECONDS, probe_lease
    )
    return BreakerDecision(bool(allowed), bool(probe), int(retry_ms) / 1000, _text(state))


def record(redis: Redis, name: str, ok: int, errors: int, probe: bool = False) -> BreakerTransition:
    """Adds outcomes of system work (validation rejects excluded) and applies transitions."""
    if not probe and ok == 0 and errors == 0:
        return BreakerTransition("", CLOSED, 0.0, 0)
    event, state, rate, volume = redis.eval(
        _RECORD, 2, STATE_KEY.format(name=name), WINDOW_KEY.format(name=name), ok, errors,
        settings.ZENITH_BREAKER_WINDOW_SECONDS, BUCKET_SECONDS, settings.ZENITH_BREAKER_MIN_VOLUME,
        settings.ZENITH_BREAKER_ERROR_RATE, "1" if probe else "0",
    )
    return BreakerTransition(_text(event), _text(state), int(rate) / 1_000_000, int(volume))


# KEYS: state. Clears the probe lease only while still half-open (a recorded outcome may
# already have closed or re-opened the breaker).
_RELEASE_PROBE = """
if redis.call('HGET', KEYS[1], 'state') == 'half_open' then
  redis.call('HDEL', KEYS[1], 'probe_until')
  return 1
end
return 0
"""


def release_probe(redis: Redis, name: str) -> bool:
    """The probe granted by `allow` will not run (deferred by the throttle or pacing, claimed
    by another worker, cancelled): let the next batch be the probe now instead of leaving
    every batch of the type waiting out the probe's lease."""
    return bool(redis.eval(_RELEASE_PROBE, 1, STATE_KEY.format(name=name)))


def force(redis: Redis, name: str, forced: str | None) -> None:
    """Operator override: "open", "closed", or None to let the error rate decide again."""
    key = STATE_KEY.format(name=name)
    if forced in (None, "", "auto"):
        redis.hdel(key, "forced")
        return
    if forced not in (OPEN, CLOSED):
        raise ValueError("forced state must be 'open', 'closed' or 'auto'")
    mapping = {"forced": forced}
    if forced == OPEN:
        mapping.update(state=OPEN, opened_at=str(time.time()), reason="forced open by an operator")
    else:
        mapping.update(state=CLOSED, reason="")
        redis.delete(WINDOW_KEY.format(name=name))
    redis.hset(key, mapping=mapping)


def status(redis: Redis, name: str) -> dict:
    raw = {_text(k): _text(v) for k, v in redis.hgetall(STATE_KEY.format(name=name)).items()}
    state = raw.get("forced") or raw.get("state") or CLOSED
    opened_at = float(raw["opened_at"]) if raw.get("opened_at") else None
    return {
        "data_type": name,
        "state": state,
        "forced": raw.get("forced", ""),
        "reason": raw.get("reason", ""),
        "opened_at": opened_at,
        "reopens_at": (opened_at + settings.ZENITH_BREAKER_COOLDOWN_SECONDS) if opened_at and state == OPEN else None,
    }


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
