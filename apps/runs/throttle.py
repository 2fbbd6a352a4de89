"""Rate limits that hold across every worker: token buckets in Redis, one per task type and one per
job, taken from atomically by a Lua script on Redis's own clock.

Only this module talks to Redis for rate limits. Where the broker is not Redis (`make dev`'s
in-memory broker, one process), the same buckets live in the process.
"""

import threading
import time
from functools import cache

import redis
from django.conf import settings

# KEYS: the buckets; ARGV: per bucket its capacity and its refill per second. Takes one token from
# every bucket, or from none; returns the seconds to wait until all have one (0 when taken).
TAKE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local levels, wait = {}, 0
for i, key in ipairs(KEYS) do
  local capacity, rate = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or capacity
  local at = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + (now - at) * rate)
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
for i, key in ipairs(KEYS) do
  local capacity, rate = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tokens = levels[i]
  if wait == 0 then tokens = tokens - 1 end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
end
return tostring(wait)
"""

Limit = tuple[str, int]  # (bucket name, runs per minute)

_local_buckets: dict[str, tuple[float, float]] = {}
_local_lock = threading.Lock()


def rate_limit_wait(limits: list[Limit]) -> float:
    """Take one start from each bucket, all or none; the seconds to wait when one is empty."""
    if not limits:
        return 0.0
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return _local_wait(limits)
    keys = [f"dts:rate:{name}" for name, _ in limits]
    arguments = [value for _, per_minute in limits for value in (per_minute, per_minute / 60)]
    return float(_take_script()(keys=keys, args=arguments))


@cache
def _take_script() -> "redis.commands.core.Script":
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).register_script(TAKE_SCRIPT)


def _local_wait(limits: list[Limit]) -> float:
    now = time.monotonic()
    with _local_lock:
        levels = {}
        wait = 0.0
        for name, per_minute in limits:
            tokens, at = _local_buckets.get(name, (float(per_minute), now))
            tokens = min(per_minute, tokens + (now - at) * per_minute / 60)
            levels[name] = tokens
            if tokens < 1:
                wait = max(wait, (1 - tokens) / (per_minute / 60))
        for name, tokens in levels.items():
            _local_buckets[name] = (tokens - (1 if wait == 0 else 0), now)
    return wait
