"""Token-bucket rate limiters: one in Redis (shared by every API replica), one in memory.

A bucket holds up to `limit` tokens and refills at `limit / window` tokens per second; a request
takes one token or is refused. That allows a burst of `limit` and then a steady `limit` per
window, with no cliff at window boundaries (unlike fixed windows) and O(1) state per client
(unlike a sliding log).

* `RedisLimiter` runs the whole read-refill-take-write step as one Lua script, so concurrent
  requests on any number of replicas cannot overspend a bucket, and reads the clock with Redis'
  `TIME`, so replicas with skewed clocks agree. Buckets expire when they would be full anyway.
* `MemoryLimiter` is the fallback of the embedded default (no REDIS_URL): exact within one
  process, but each process has its own buckets. With N API processes a client gets N times the
  limit, which is why production runs with Redis.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis


@dataclass(frozen=True)
class Decision:
    """The outcome of taking one token from a bucket."""

    allowed: bool
    limit: int
    remaining: int  # whole tokens left after this request
    retry_after: float  # seconds until one token is available (0 when allowed)
    reset_after: float  # seconds until the bucket is full again


class Limiter(Protocol):
    async def hit(self, key: str, *, limit: int, window: float) -> Decision: ...

    async def close(self) -> None: ...


def _take(tokens: float, elapsed: float, *, limit: int, window: float) -> tuple[bool, float]:
    """Refill for `elapsed` seconds, then try to take one token: (allowed, tokens left)."""
    rate = limit / window
    tokens = min(float(limit), tokens + max(0.0, elapsed) * rate)
    if tokens >= 1.0:
        return True, tokens - 1.0
    return False, tokens


def _decision(allowed: bool, tokens: float, *, limit: int, window: float) -> Decision:
    rate = limit / window
    return Decision(
        allowed=allowed,
        limit=limit,
        remaining=math.floor(tokens),
        retry_after=0.0 if allowed else (1.0 - tokens) / rate,
        reset_after=(limit - tokens) / rate,
    )


class MemoryLimiter:
    """Buckets in this process's memory (least recently used ones dropped beyond `max_keys`)."""

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_keys = max_keys
        self._clock = clock

    async def hit(self, key: str, *, limit: int, window: float) -> Decision:
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (float(limit), now))
            allowed, tokens = _take(tokens, now - stamp, limit=limit, window=window)
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return _decision(allowed, tokens, limit=limit, window=window)

    async def close(self) -> None:
        return None


#: KEYS[1] = bucket; ARGV = limit, window in ms. Returns {allowed, tokens as a string}.
_BUCKET_SCRIPT = """
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local rate = limit / window_ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = limit
  ts = now
end
tokens = math.min(limit, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((limit - tokens) / rate) + 1000)
return {allowed, string.format('%.17g', tokens)}
"""


class RedisLimiter:
    """Buckets in Redis under `<namespace>:<key>`, updated atomically by a Lua script."""

    def __init__(self, url: str, *, namespace: str, timeout: float = 0.5) -> None:
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script = self._client.register_script(_BUCKET_SCRIPT)
        self._namespace = namespace

    async def hit(self, key: str, *, limit: int, window: float) -> Decision:
        allowed, tokens = await self._script(
            keys=[f"{self._namespace}:{key}"], args=[limit, max(1, round(window * 1000))]
        )
        return _decision(bool(int(allowed)), float(tokens), limit=limit, window=window)

    async def close(self) -> None:
        await self._client.aclose()
