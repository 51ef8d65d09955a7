"""Per-user request budgets: a fixed one-minute window, counted in Redis or in memory.

A fixed window is the simplest counter that every instance can share with one Redis
round trip; its known weakness (up to 2x the budget across a window boundary) is
acceptable for an abuse guard, which is what this is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("crm.ratelimit")

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window (and the budget) resets


class Counter(Protocol):
    async def hit(self, key: str, window: int, ttl: int) -> int | None:
        """Count one request in `window`; the count so far, or None if counting failed."""

    async def close(self) -> None: ...


class MemoryCounter:
    """Per-process counters: with N instances the effective budget is N times the limit."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    async def hit(self, key: str, window: int, ttl: int) -> int | None:
        del ttl
        if window != self._window:
            # A new minute: drop every old counter at once, so memory stays bounded by active users.
            self._window, self._counts = window, {}
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count

    async def close(self) -> None:
        return None


class RedisCounter:
    """Shared counters; fails open (returns None) when Redis does not answer."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)

    async def hit(self, key: str, window: int, ttl: int) -> int | None:
        from redis.exceptions import RedisError

        redis_key = f"crm:rl:{window}:{key}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(redis_key)
                pipe.expire(redis_key, ttl)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("rate limit counter unavailable, failing open", error=type(exc).__name__)
            return None
        return int(count)

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, per_minute: int, counter: Counter) -> None:
        self.per_minute = per_minute
        self.counter = counter

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    async def check(self, user_key: str) -> Decision:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        reset_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
        count = await self.counter.hit(user_key, window, WINDOW_SECONDS + 1)
        if count is None:  # fail open: a broken counter must not take the service down
            return Decision(True, self.per_minute, self.per_minute, reset_after)
        remaining = max(0, self.per_minute - count)
        return Decision(count <= self.per_minute, self.per_minute, remaining, reset_after)


def create_limiter(per_minute: int, redis_url: str | None) -> RateLimiter:
    counter: Counter = RedisCounter(redis_url) if redis_url else MemoryCounter()
    return RateLimiter(per_minute, counter)
