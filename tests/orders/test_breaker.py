"""The circuit breaker: opens after 5 consecutive failures, answers at once while open, and
lets one trial call through after the reset period (shortened here via `breaker.reset_after`)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.helpers import assert_problem, create_customer
from tests.orders.conftest import MakeCrm, Shared
from tests.orders.stub import answer, free_port, json_answer, order, page_of, slow

OPEN_TYPE = "urn:crm:problem:order-service-circuit-open"
PAUSED = "the Order Service is failing; calls are paused"


async def get_orders(shared: Shared) -> httpx.Response:
    return await shared.crm.http.get(f"/api/customers/{shared.customer_id}/orders", headers=shared.headers)


async def open_circuit(shared: Shared) -> None:
    shared.stub.behaviour = answer(500)
    for _ in range(5):
        assert_problem(await get_orders(shared), 502)
    assert shared.stub.count == 5
    assert shared.crm.breaker.opened_at is not None


async def cancel_once_seen(shared: Shared, requests: int) -> None:
    """Start a call and cancel it (its caller goes away) once the stub has seen `requests` in all."""
    call = asyncio.ensure_future(get_orders(shared))
    assert await asyncio.to_thread(shared.stub.wait_for_requests, requests)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def reach_reset(shared: Shared) -> None:
    """Shorten the open period of an open circuit and let it pass."""
    shared.crm.breaker.reset_after = 0.2
    await asyncio.sleep(0.3)


async def test_opens_after_five_consecutive_failures(shared: Shared) -> None:
    await open_circuit(shared)

    started = time.perf_counter()
    response = await get_orders(shared)
    stats = await shared.crm.http.get(f"/api/customers/{shared.customer_id}/statistics", headers=shared.headers)
    took = time.perf_counter() - started

    problem = assert_problem(response, 503)
    assert problem["type"] == OPEN_TYPE
    assert problem["detail"] == PAUSED
    assert 29 <= int(response.headers["retry-after"]) <= 30
    assert stats.status_code == 200
    assert stats.json()["orders"] == {"available": False, "reason": PAUSED}
    assert stats.json()["contacts"] == {"total": 1}
    assert shared.stub.count == 5  # no call reached the Order Service
    assert took < 1.0


async def test_the_fourth_failure_does_not_open_it(shared: Shared) -> None:
    shared.stub.script.extend([answer(500)] * 4)

    for _ in range(4):
        assert_problem(await get_orders(shared), 502)
    response = await get_orders(shared)

    assert response.status_code == 200, response.text
    assert shared.stub.count == 5


async def test_only_consecutive_failures_count(shared: Shared) -> None:
    # 4 failures, a success, 4 failures: never 5 in a row.
    shared.stub.script.extend([*[answer(500)] * 4, json_answer(page_of([], 1, 10)), *[answer(500)] * 4])

    statuses = [(await get_orders(shared)).status_code for _ in range(10)]

    assert statuses == [502] * 4 + [200] + [502] * 4 + [200]
    assert shared.stub.count == 10
    assert shared.crm.breaker.opened_at is None


async def test_failed_statistics_count_too(shared: Shared) -> None:
    shared.stub.behaviour = answer(500)

    for _ in range(5):
        stats = await shared.crm.http.get(f"/api/customers/{shared.customer_id}/statistics", headers=shared.headers)
        assert stats.json()["orders"]["available"] is False

    assert assert_problem(await get_orders(shared), 503)["type"] == OPEN_TYPE
    assert shared.stub.count == 5


async def test_rejected_tokens_do_not_open_it(shared: Shared) -> None:
    # A 401/403 proves the Order Service is up; it only refused this caller.
    shared.stub.behaviour = answer(401)

    for _ in range(6):
        problem = assert_problem(await get_orders(shared), 502)
        assert problem["type"] == "urn:crm:problem:order-service-rejected-token"

    assert shared.stub.count == 6
    assert shared.crm.breaker.opened_at is None


async def test_connection_failures_open_it(make_crm: MakeCrm, admin: dict[str, str]) -> None:
    async with make_crm(f"http://127.0.0.1:{free_port()}") as crm:
        path = f"/api/customers/{(await create_customer(crm.http, admin))['id']}/orders"

        for _ in range(5):
            problem = assert_problem(await crm.http.get(path, headers=admin), 503)
            assert problem["type"] == "urn:crm:problem:order-service-unavailable"
        response = await crm.http.get(path, headers=admin)

    assert assert_problem(response, 503)["type"] == OPEN_TYPE


async def test_a_successful_trial_call_closes_it(shared: Shared) -> None:
    await open_circuit(shared)
    shared.stub.behaviour = None  # the Order Service recovers
    shared.stub.orders[shared.customer_id] = [order(shared.customer_id, 0, amount="4.20")]
    assert assert_problem(await get_orders(shared), 503)["type"] == OPEN_TYPE  # still open
    assert shared.stub.count == 5

    await reach_reset(shared)
    trial = await get_orders(shared)

    assert trial.status_code == 200, trial.text
    assert trial.json()["orders"][0]["total_amount"] == "4.20"
    assert shared.stub.count == 6
    assert shared.crm.breaker.opened_at is None
    assert shared.crm.breaker.failures == 0
    # Closed: calls flow again, statistics included.
    assert (await get_orders(shared)).status_code == 200
    stats = await shared.crm.http.get(f"/api/customers/{shared.customer_id}/statistics", headers=shared.headers)
    assert stats.json()["orders"]["total"] == 1
    assert shared.stub.count == 8


async def test_a_failed_trial_call_reopens_it(shared: Shared) -> None:
    await open_circuit(shared)
    first_opened = shared.crm.breaker.opened_at
    await reach_reset(shared)

    trial = await get_orders(shared)
    after = await get_orders(shared)

    assert assert_problem(trial, 502)["detail"] == "the Order Service answered 500"
    assert assert_problem(after, 503)["type"] == OPEN_TYPE
    assert shared.stub.count == 6
    # A new open period starts with the failed trial.
    assert first_opened is not None
    assert shared.crm.breaker.opened_at is not None
    assert shared.crm.breaker.opened_at > first_opened


async def test_one_trial_call_at_a_time(shared: Shared) -> None:
    await open_circuit(shared)
    await reach_reset(shared)
    shared.stub.behaviour = slow(0.5)  # healthy again, but slow

    responses = await asyncio.gather(*(get_orders(shared) for _ in range(3)))

    assert sorted(r.status_code for r in responses) == [200, 503, 503]
    assert shared.stub.count == 6


async def test_a_cancelled_trial_call_neither_closes_it_nor_blocks_the_next(shared: Shared) -> None:
    await open_circuit(shared)
    await reach_reset(shared)
    shared.stub.behaviour = slow(10)

    await cancel_once_seen(shared, 6)  # the caller goes away during the trial call

    shared.stub.behaviour = answer(500)
    next_trial = await get_orders(shared)
    after = await get_orders(shared)

    # The next caller made the trial call (the slot was freed), which failed: open again.
    assert assert_problem(next_trial, 502)["detail"] == "the Order Service answered 500"
    assert assert_problem(after, 503)["type"] == OPEN_TYPE
    assert shared.stub.count == 7


async def test_a_cancelled_call_does_not_reset_the_failure_count(shared: Shared) -> None:
    shared.stub.script.extend([answer(500)] * 4 + [slow(10)])
    for _ in range(4):
        assert_problem(await get_orders(shared), 502)
    await cancel_once_seen(shared, 5)
    shared.stub.behaviour = answer(500)

    fifth = await get_orders(shared)
    after = await get_orders(shared)

    assert assert_problem(fifth, 502)["detail"] == "the Order Service answered 500"
    assert assert_problem(after, 503)["type"] == OPEN_TYPE
    assert shared.stub.count == 6
