"""The limiter on its own: window arithmetic, counting, failing open, and the Redis counter."""

from __future__ import annotations

import time
import uuid

import pytest

from crm.ratelimit.service import (
    WINDOW_SECONDS,
    Decision,
    MemoryCounter,
    RateLimiter,
    RedisCounter,
    create_limiter,
    current_window,
)
from tests.ratelimit.support import REDIS_URL, HungServer, closed_port, collect_events, redis_answers


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class BrokenCounter:
    async def hit(self, key: str, window: int, ttl: int) -> int | None:
        del key, window, ttl
        return None

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0.0, (0, 60)),  # the first instant of a window: the whole minute is left
        (0.4, (0, 60)),
        (1.0, (0, 59)),
        (30.0, (0, 30)),
        (59.2, (0, 1)),
        (59.9999, (0, 1)),  # never 0: Retry-After 0 would invite an immediate retry
        (60.0, (1, 60)),
        (61.9995, (1, 59)),  # 58.0005 s left: rounding down would send the client back too early
        (1_800_000_000.0, (30_000_000, 60)),
        (1_800_000_059.5, (30_000_000, 1)),
    ],
)
def test_window_and_seconds_until_it_ends(now: float, expected: tuple[int, int]) -> None:
    assert current_window(now) == expected


def test_waiting_retry_after_always_lands_in_the_next_window() -> None:
    for step in range(0, 60_000, 7):  # every 7 ms through one window
        now = 1_800_000_000.0 + step / 1000
        window, reset_after = current_window(now)
        assert 1 <= reset_after <= WINDOW_SECONDS
        assert current_window(now + reset_after)[0] == window + 1, now


async def test_budget_per_user_per_window() -> None:
    clock = FakeClock(1_800_000_030.0)
    limiter = RateLimiter(5, MemoryCounter(), clock=clock)
    decisions = [await limiter.check("alice") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert {d.reset_after for d in decisions} == {30}
    assert {d.limit for d in decisions} == {5}
    # Another user has a budget of their own.
    assert await limiter.check("bob") == Decision(True, 5, 4, 30)
    # Still denied later in the same window; a fresh budget in the next one.
    clock.now = 1_800_000_059.9
    assert (await limiter.check("alice")).allowed is False
    clock.now = 1_800_000_060.0
    assert await limiter.check("alice") == Decision(True, 5, 4, 60)


async def test_memory_counter_forgets_old_windows() -> None:
    counter = MemoryCounter()
    assert [await counter.hit("u", 7, 61) for _ in range(3)] == [1, 2, 3]
    assert await counter.hit("v", 7, 61) == 1
    assert await counter.hit("u", 8, 61) == 1
    assert counter._counts == {"u": 1}  # the old window's users are gone, not just reset


async def test_a_broken_counter_fails_open_uncounted() -> None:
    limiter = RateLimiter(2, BrokenCounter(), clock=FakeClock(1_800_000_010.0))
    decisions = [await limiter.check("alice") for _ in range(5)]
    assert decisions == [Decision(True, 2, 2, 50, counted=False)] * 5


def test_zero_disables_and_redis_url_selects_the_counter() -> None:
    assert create_limiter(0, None).enabled is False
    memory = create_limiter(5, None)
    assert memory.enabled is True
    assert isinstance(memory.counter, MemoryCounter)
    assert isinstance(create_limiter(5, REDIS_URL).counter, RedisCounter)


async def test_redis_counter_counts_with_expiry() -> None:
    if not await redis_answers():
        pytest.skip(f"no Redis at {REDIS_URL}")
    from redis.asyncio import Redis

    counter = RedisCounter(REDIS_URL)
    user = f"unit-{uuid.uuid4().hex}"
    window = int(time.time() // WINDOW_SECONDS)
    raw = Redis.from_url(REDIS_URL)
    try:
        assert [await counter.hit(user, window, 61) for _ in range(3)] == [1, 2, 3]
        assert await counter.hit(user, window + 1, 61) == 1  # each window counts on its own
        key = f"crm:rl:{window}:{user}"
        assert await raw.get(key) == b"3"
        assert 0 < await raw.ttl(key) <= 61  # counters never outlive their window by much
    finally:
        await raw.delete(f"crm:rl:{window}:{user}", f"crm:rl:{window + 1}:{user}")
        await raw.aclose()
        await counter.close()


async def test_redis_counter_fails_open_fast_on_a_closed_port() -> None:
    counter = RedisCounter(f"redis://127.0.0.1:{closed_port()}/15")
    try:
        with collect_events("crm.ratelimit") as logs:
            started = time.perf_counter()
            assert await counter.hit("u", 1, 61) is None
            assert time.perf_counter() - started < 0.5
        assert logs.events("WARNING") == ["rate limit counter unavailable, failing open"]
    finally:
        await counter.close()


async def test_redis_counter_backs_off_after_a_failure_then_retries() -> None:
    monotonic = FakeClock(100.0)
    async with HungServer() as hung:
        counter = RedisCounter(hung.url, retry_seconds=5.0, monotonic=monotonic)
        try:
            with collect_events("crm.ratelimit") as logs:
                started = time.perf_counter()
                assert await counter.hit("u", 1, 61) is None  # one socket timeout (0.25 s), no retries
                first = time.perf_counter() - started
                assert 0.2 <= first < 1.0, first
                assert hung.accepted == 1

                started = time.perf_counter()
                for _ in range(20):  # within the pause: Redis is not even tried
                    assert await counter.hit("u", 1, 61) is None
                assert time.perf_counter() - started < 0.1
                assert hung.accepted == 1

                monotonic.now += 5.1  # the pause is over: try Redis again
                assert await counter.hit("u", 1, 61) is None
                assert hung.accepted == 2
            # One warning per outage, not one per request.
            assert logs.events("WARNING") == ["rate limit counter unavailable, failing open"]
        finally:
            await counter.close()
