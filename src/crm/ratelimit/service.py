"""Per-user request budgets: a fixed one-minute window, counted in Redis or in memory.

A fixed window is the simplest counter that every instance can share with one Redis
round trip; its known weakness (up to 2x the budget across a window boundary) is
acceptable for an abuse guard, which is what this is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("crm.ratelimit")

WINDOW_SECONDS = 60
# After Redis fails, requests skip it (and are not counted) for this long, so a hung Redis
# costs one socket timeout per pause instead of one per request, and logs once, not per request.
REDIS_RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window (and the budget) resets
    counted: bool = True  # False when the counter failed and the request was let through uncounted


def current_window(now: float) -> tuple[int, int]:
    """The number of the window `now` falls in, and whole seconds until it ends (1..60).

    Rounded up, so a client that waits `Retry-After` seconds is always in the next window.
    """
    window = int(now // WINDOW_SECONDS)
    reset_after = math.ceil((window + 1) * WINDOW_SECONDS - now)
    return window, min(WINDOW_SECONDS, max(1, reset_after))


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

    def __init__(
        self,
        url: str,
        *,
        retry_seconds: float = REDIS_RETRY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No client-side retries: the budget check sits on every request's path, and
        # failing open at once is cheaper than retrying a Redis that is down.
        self._redis = Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25, retry=Retry(NoBackoff(), 0))
        self._retry_seconds = retry_seconds
        self._monotonic = monotonic
        self._skip_until: float | None = None  # set while Redis is considered down

    async def hit(self, key: str, window: int, ttl: int) -> int | None:
        from redis.exceptions import RedisError

        if self._skip_until is not None and self._monotonic() < self._skip_until:
            return None
        redis_key = f"crm:rl:{window}:{key}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(redis_key)
                pipe.expire(redis_key, ttl)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            if self._skip_until is None:
                log.warning(
                    "rate limit counter unavailable, failing open",
                    error=type(exc).__name__,
                    retry_in_s=self._retry_seconds,
                )
            self._skip_until = self._monotonic() + self._retry_seconds
            return None
        if self._skip_until is not None:
            log.info("rate limit counter available again")
            self._skip_until = None
        return int(count)

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, per_minute: int, counter: Counter, *, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self.counter = counter
        # Wall-clock time, so every instance sharing Redis agrees on the window (up to clock skew).
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    async def check(self, user_key: str) -> Decision:
        window, reset_after = current_window(self.clock())
        count = await self.counter.hit(user_key, window, WINDOW_SECONDS + 1)
        if count is None:  # fail open: a broken counter must not take the service down
            return Decision(True, self.per_minute, self.per_minute, reset_after, counted=False)
        remaining = max(0, self.per_minute - count)
        return Decision(count <= self.per_minute, self.per_minute, remaining, reset_after)


def create_limiter(per_minute: int, redis_url: str | None) -> RateLimiter:
    counter: Counter = RedisCounter(redis_url) if redis_url else MemoryCounter()
    return RateLimiter(per_minute, counter)
