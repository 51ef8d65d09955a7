"""The per-user rate limit through the API: 429s and their headers, Redis sharing, failing open."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from crm.config import Settings
from tests.helpers import TokenFactory, assert_problem
from tests.ratelimit.support import (
    REDIS_URL,
    HungServer,
    closed_port,
    collect_events,
    limited_app,
    mid_window,
    redis_answers,
)

POLICY = '"per-user";q=5;w=60'


@pytest.fixture
async def redis_url() -> str:
    if not await redis_answers():
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


def user(tokens: TokenFactory, role: str = "employee") -> dict[str, str]:
    """Headers of a user nobody else uses, so counters never collide between tests or runs."""
    return tokens.headers(role, uuid.uuid4())


async def spend(http: httpx.AsyncClient, headers: dict[str, str], n: int) -> list[httpx.Response]:
    return [await http.get("/api/customers", headers=headers) for _ in range(n)]


def assert_rate_limited(response: httpx.Response, retry_after: int | None = None) -> int:
    assert_problem(response, 429)
    assert response.json()["type"] == "urn:crm:problem:rate-limited"
    value = response.headers["Retry-After"]
    assert value.isdigit(), value  # delta-seconds, never an HTTP date or a fraction
    seconds = int(value)
    assert 1 <= seconds <= 60
    if retry_after is not None:
        assert seconds == retry_after
    assert response.headers["RateLimit-Policy"] == POLICY
    assert response.headers["RateLimit"] == f'"per-user";r=0;t={seconds}'
    return seconds


async def test_sixth_request_in_a_minute_is_429(settings: Settings, database_url: str, tokens: TokenFactory) -> None:
    alice, bob = user(tokens), user(tokens, "admin")
    async with limited_app(settings, database_url, frozen_at=mid_window(), rate_limit_per_minute=5) as (_, http):
        allowed = await spend(http, alice, 5)
        assert [r.status_code for r in allowed] == [200] * 5
        assert [r.headers["RateLimit"] for r in allowed] == [f'"per-user";r={n};t=30' for n in (4, 3, 2, 1, 0)]
        assert {r.headers["RateLimit-Policy"] for r in allowed} == {POLICY}

        assert_rate_limited(await http.get("/api/customers", headers=alice), retry_after=30)
        # Every route under /api counts, and writes are refused before they touch the database.
        refused = await http.post("/api/customers", json={"first_name": "A", "last_name": "B"}, headers=alice)
        assert_rate_limited(refused, retry_after=30)

        # Another user is unaffected.
        other = await http.get("/api/customers", headers=bob)
        assert other.status_code == 200
        assert other.headers["RateLimit"] == '"per-user";r=4;t=30'

        # Operations endpoints are not limited.
        assert [(await http.get("/health")).status_code for _ in range(10)] == [200] * 10


async def test_real_clock_retry_after_is_the_rest_of_the_minute(
    settings: Settings, database_url: str, tokens: TokenFactory
) -> None:
    alice = user(tokens)
    left = 60 - time.time() % 60
    if left < 2:  # the test takes milliseconds; do not let it straddle the turn of the minute
        await asyncio.sleep(left + 0.05)
    async with limited_app(settings, database_url, rate_limit_per_minute=5) as (_, http):
        await spend(http, alice, 5)
        before = time.time()
        seconds = assert_rate_limited(await http.get("/api/customers", headers=alice))
        after = time.time()
    # Retry-After is the time left in the window, rounded up.
    assert 60 - int(before % 60) >= seconds >= 60 - int(after % 60) - 1


async def test_zero_disables_the_limit(settings: Settings, database_url: str, tokens: TokenFactory) -> None:
    alice = user(tokens)
    async with limited_app(settings, database_url, rate_limit_per_minute=0) as (_, http):
        responses = await spend(http, alice, 20)
    assert [r.status_code for r in responses] == [200] * 20
    assert not any("RateLimit" in r.headers or "RateLimit-Policy" in r.headers for r in responses)


async def test_memory_counters_are_per_instance(settings: Settings, database_url: str, tokens: TokenFactory) -> None:
    """The documented limit without Redis: each instance has its own budget."""
    alice = user(tokens)
    now = mid_window()
    async with (
        limited_app(settings, database_url, frozen_at=now, rate_limit_per_minute=5, redis_url=None) as (_, a),
        limited_app(settings, database_url, frozen_at=now, rate_limit_per_minute=5, redis_url=None) as (_, b),
    ):
        assert [r.status_code for r in await spend(a, alice, 3) + await spend(b, alice, 3)] == [200] * 6


async def test_redis_budget_is_shared_by_instances(
    settings: Settings, database_url: str, tokens: TokenFactory, redis_url: str
) -> None:
    alice, bob = user(tokens), user(tokens)
    now = mid_window()
    async with (
        limited_app(settings, database_url, frozen_at=now, rate_limit_per_minute=5, redis_url=redis_url) as (_, a),
        limited_app(settings, database_url, frozen_at=now, rate_limit_per_minute=5, redis_url=redis_url) as (_, b),
    ):
        first = await spend(a, alice, 3)
        second = await spend(b, alice, 2)
        assert [r.status_code for r in first + second] == [200] * 5
        # Instance B saw two requests, yet reports what is left of the shared budget.
        assert [r.headers["RateLimit"] for r in second] == ['"per-user";r=1;t=30', '"per-user";r=0;t=30']
        assert_rate_limited(await b.get("/api/customers", headers=alice), retry_after=30)
        assert_rate_limited(await a.get("/api/customers", headers=alice), retry_after=30)
        assert (await a.get("/api/customers", headers=bob)).status_code == 200


async def test_unreachable_redis_fails_open_and_logs(
    settings: Settings, database_url: str, tokens: TokenFactory
) -> None:
    alice = user(tokens)
    url = f"redis://127.0.0.1:{closed_port()}/15"
    async with limited_app(settings, database_url, rate_limit_per_minute=5, redis_url=url) as (_, http):
        with collect_events("crm.ratelimit") as logs:
            started = time.perf_counter()
            responses = await spend(http, alice, 8)
            elapsed = time.perf_counter() - started
    assert [r.status_code for r in responses] == [200] * 8  # more than the budget: nothing was counted
    assert elapsed < 2.0
    assert {r.headers["RateLimit-Policy"] for r in responses} == {POLICY}
    assert not any("RateLimit" in r.headers for r in responses)  # no remaining quota is claimed
    assert logs.events("WARNING") == ["rate limit counter unavailable, failing open"]
    warning = next(r for r in logs.records if r["level"] == "WARNING")
    assert warning["error"] == "ConnectionError"


async def test_hung_redis_costs_one_timeout_not_one_per_request(
    settings: Settings, database_url: str, tokens: TokenFactory
) -> None:
    alice = user(tokens)
    async with HungServer() as hung:
        async with limited_app(settings, database_url, rate_limit_per_minute=5, redis_url=hung.url) as (_, http):
            with collect_events("crm.ratelimit") as logs:
                started = time.perf_counter()
                responses = await spend(http, alice, 10)
                elapsed = time.perf_counter() - started
        accepted = hung.accepted
    assert [r.status_code for r in responses] == [200] * 10
    # One 0.25 s socket timeout, then Redis is skipped for a while; per request it would be 2.5 s.
    assert elapsed < 1.5, elapsed
    assert accepted == 1
    assert logs.events("WARNING") == ["rate limit counter unavailable, failing open"]


async def test_routes_that_render_their_own_response_carry_the_headers_too(
    settings: Settings, database_url: str, tokens: TokenFactory
) -> None:
    # GET by id (the framework-free read from the second request on) and the statistics
    # return their own Response objects, which would drop headers a dependency set.
    alice = user(tokens, "admin")
    async with limited_app(settings, database_url, frozen_at=mid_window(), rate_limit_per_minute=5) as (_, http):
        created = await http.post("/api/customers", json={"first_name": "A", "last_name": "B"}, headers=alice)
        assert created.status_code == 201, created.text
        path = f"/api/customers/{created.json()['id']}"
        answers = [
            await http.get(path, headers=alice),
            await http.get(path, headers=alice),
            await http.get("/api/interactions/statistics", headers=alice),
        ]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert [r.headers["RateLimit"] for r in answers] == [f'"per-user";r={n};t=30' for n in (3, 2, 1)]
        assert {r.headers["RateLimit-Policy"] for r in answers} == {POLICY}
        await http.get(path, headers=alice)  # the fifth
        assert_rate_limited(await http.get(path, headers=alice), retry_after=30)


async def test_a_request_the_fast_path_leaves_to_the_application_is_counted_once(
    settings: Settings, database_url: str, tokens: TokenFactory
) -> None:
    # With a remembered token, crm.fastpath decides first; a missing customer (404) and a
    # taken email (409) are then answered by the application, which must reuse that decision.
    alice = user(tokens, "admin")
    async with limited_app(settings, database_url, frozen_at=mid_window(), rate_limit_per_minute=6) as (_, http):
        body = {"first_name": "A", "last_name": "B", "email": "a.b@example.com"}
        first = await http.post("/api/customers", json=body, headers=alice)  # verifies the token
        answers = [
            await http.get(f"/api/customers/{uuid.uuid4()}", headers=alice),
            await http.post("/api/customers", json=body, headers=alice),
        ]
        assert [first.status_code, *(r.status_code for r in answers)] == [201, 404, 409]
        assert [r.headers.get_list("RateLimit") for r in answers] == [[f'"per-user";r={n};t=30'] for n in (4, 3)]
