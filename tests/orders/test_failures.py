"""The failure table of the issue, row by row, for both endpoints; and the one retry.

/orders answers a problem (502/503/504); /statistics still answers 200 with the CRM's own
figures and `orders: {"available": false, "reason": ...}`. Time bounds are loose on purpose:
they catch "waits for the neighbour" bugs (seconds), not scheduling noise.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from crm.orders.client import MAX_RESPONSE_BYTES
from tests.helpers import assert_problem, create_customer
from tests.orders.conftest import SHARED_TIMEOUT, TIMEOUT, Crm, MakeCrm, Shared
from tests.orders.stub import (
    JSON,
    Behaviour,
    StubOrderService,
    answer,
    free_port,
    http_reply,
    json_answer,
    order,
    page_answer,
    page_of,
    per_page,
    slow,
    start_raw_server,
    streamed,
)

# Timeouts must end at the timeout, not later. Failures that need no waiting must answer
# well before it: the shared app's timeout is SHARED_TIMEOUT (3 s), so PROMPT tells the two apart.
AT_TIMEOUT = TIMEOUT + 1.5
PROMPT = 1.5
assert PROMPT < SHARED_TIMEOUT


async def timed_get(crm: Crm, path: str, headers: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await crm.http.get(path, headers=headers)
    return response, time.perf_counter() - started


def unavailable(response: httpx.Response) -> str:
    """The statistics answer is a 200 with the CRM's figures and orders unavailable; returns the reason."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["contacts"] == {"total": 1}
    assert body["interactions"]["total"] == 0
    assert set(body["orders"]) == {"available", "reason"}
    assert body["orders"]["available"] is False
    reason: str = body["orders"]["reason"]
    return reason


MakeCustomer = Callable[[Crm], Awaitable[str]]


@pytest.fixture
def make_customer(admin: dict[str, str]) -> MakeCustomer:
    """A customer with one contact, as the shared one: `unavailable()` checks that figure."""

    async def make(crm: Crm) -> str:
        created = await create_customer(crm.http, admin, contacts=[{"first_name": "A", "last_name": "B"}])
        customer: str = created["id"]
        return customer

    return make


# --- Order Service not configured, unreachable, unresolvable ----------------------------------


async def test_not_configured(make_crm: MakeCrm, make_customer: MakeCustomer, admin: dict[str, str]) -> None:
    async with make_crm(None, order_timeout=5.0) as crm:
        customer_id = await make_customer(crm)

        orders, orders_took = await timed_get(crm, f"/api/customers/{customer_id}/orders", admin)
        stats, stats_took = await timed_get(crm, f"/api/customers/{customer_id}/statistics", admin)

    problem = assert_problem(orders, 503)
    assert problem["type"] == "urn:crm:problem:order-service-not-configured"
    assert "not configured" in problem["detail"]
    assert "ORDER_SERVICE_URL" in problem["detail"]
    assert "not configured" in unavailable(stats)
    assert orders_took < PROMPT
    assert stats_took < PROMPT


async def test_connection_refused(make_crm: MakeCrm, make_customer: MakeCustomer, admin: dict[str, str]) -> None:
    # A long timeout: the answer must come from the refusal, not from waiting.
    async with make_crm(f"http://127.0.0.1:{free_port()}", order_timeout=5.0) as crm:
        customer_id = await make_customer(crm)

        orders, orders_took = await timed_get(crm, f"/api/customers/{customer_id}/orders", admin)
        stats, stats_took = await timed_get(crm, f"/api/customers/{customer_id}/statistics", admin)

    problem = assert_problem(orders, 503)
    assert problem["type"] == "urn:crm:problem:order-service-unavailable"
    assert problem["detail"] == "the Order Service is unreachable (ConnectError)"
    assert unavailable(stats) == "the Order Service is unreachable (ConnectError)"
    assert orders_took < 1.0
    assert stats_took < 1.0


async def test_unresolvable_host(make_crm: MakeCrm, make_customer: MakeCustomer, admin: dict[str, str]) -> None:
    # `.invalid` never resolves (RFC 2606). A resolver that hangs instead of failing makes this a
    # timeout, which is still bounded.
    async with make_crm("http://order-service.invalid:8002") as crm:
        customer_id = await make_customer(crm)

        orders, orders_took = await timed_get(crm, f"/api/customers/{customer_id}/orders", admin)
        stats, stats_took = await timed_get(crm, f"/api/customers/{customer_id}/statistics", admin)

    assert orders.status_code in {503, 504}, orders.text
    assert_problem(orders, orders.status_code)
    assert unavailable(stats).startswith("the Order Service")
    assert orders_took < AT_TIMEOUT
    assert stats_took < AT_TIMEOUT


# --- slower than the timeout ---------------------------------------------------------------------


async def test_slower_than_the_timeout(
    crm: Crm, stub: StubOrderService, make_customer: MakeCustomer, admin: dict[str, str]
) -> None:
    customer_id = await make_customer(crm)
    stub.behaviour = slow(10)

    orders, orders_took = await timed_get(crm, f"/api/customers/{customer_id}/orders", admin)
    stats, stats_took = await timed_get(crm, f"/api/customers/{customer_id}/statistics", admin)

    problem = assert_problem(orders, 504)
    assert problem["type"] == "urn:crm:problem:order-service-timeout"
    assert problem["detail"] == "the Order Service did not answer within 1 s"
    assert unavailable(stats) == "the Order Service did not answer within 1 s"
    for took in (orders_took, stats_took):
        assert TIMEOUT * 0.9 <= took < AT_TIMEOUT
    # A read timeout is a connection-level failure, but there is no time left to retry.
    assert stub.count == 2


async def test_slow_but_within_the_timeout_is_fine(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = [order(customer_id, 0)]
    stub.behaviour = slow(TIMEOUT / 3)

    response, took = await timed_get(crm, f"/api/customers/{customer_id}/orders", admin)

    assert response.status_code == 200, response.text
    assert len(response.json()["orders"]) == 1
    assert took >= TIMEOUT / 3


async def test_statistics_share_one_time_budget_over_all_pages(
    crm: Crm, stub: StubOrderService, make_customer: MakeCustomer, admin: dict[str, str]
) -> None:
    customer_id = await make_customer(crm)
    stub.orders[customer_id] = [order(customer_id, n) for n in range(850)]
    # Every page answers within the timeout, but 8 pages read 4 at a time take longer.
    stub.behaviour = per_page({p: slow(TIMEOUT * 0.6) for p in range(2, 10)})

    response, took = await timed_get(crm, f"/api/customers/{customer_id}/statistics", admin)

    assert unavailable(response) == "the Order Service did not answer within 1 s"
    assert TIMEOUT * 0.9 <= took < AT_TIMEOUT


async def test_a_slow_retry_does_not_extend_the_timeout(
    make_crm: MakeCrm, stub: StubOrderService, make_customer: MakeCustomer, admin: dict[str, str]
) -> None:
    async with make_crm(stub.url, order_timeout=2.0) as crm:
        customer_id = await make_customer(crm)
        # The first attempt fails late; the retry gets what is left of the 2 s, not 2 s more.
        stub.script.extend([slow(1.2, then=answer(503)), slow(10)])

        response, took = await timed_get(crm, f"/api/customers/{customer_id}/orders", admin)

    assert_problem(response, 504)
    assert 1.8 <= took < 2.5
    assert stub.count == 2


async def test_no_database_connection_waits_on_the_order_service(
    make_crm: MakeCrm, stub: StubOrderService, make_customer: MakeCustomer, admin: dict[str, str]
) -> None:
    # One pooled connection, and a short wait for it: a request holding it while the Order
    # Service dawdles would starve the others.
    async with make_crm(stub.url, order_timeout=5.0, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.5) as crm:
        customer_id = await make_customer(crm)
        stub.behaviour = slow(1.5)
        waiting = [
            asyncio.ensure_future(crm.http.get(f"/api/customers/{customer_id}/{endpoint}", headers=admin))
            for endpoint in ("orders", "statistics")
        ]
        assert await asyncio.to_thread(stub.wait_for_requests, 2)

        response, took = await timed_get(crm, f"/api/customers/{customer_id}", admin)
        slow_ones = await asyncio.gather(*waiting)

    assert response.status_code == 200, response.text
    assert took < 0.5
    assert [r.status_code for r in slow_ones] == [200, 200]
    assert slow_ones[1].json()["orders"]["available"] is True


# --- bad answers: 5xx, wrong shape, too big, rejected token ---------------------------------------

BIG = MAX_RESPONSE_BYTES + 1


def _foreign(document: JSON) -> None:
    document["orders"][0]["customer_id"] = "00000000-0000-4000-8000-000000000000"


def _set_order(**fields: Any) -> Any:
    return lambda document: document["orders"][0].update(fields)


def _without(key: str) -> Any:
    return lambda document: document.pop(key)


BAD_ANSWERS = [
    # (behaviour, /orders status, problem type suffix, detail fragment, requests one call makes)
    pytest.param(answer(500, '{"error": "boom"}'), 502, "bad-response", "answered 500", 1, id="500-not-retried"),
    pytest.param(answer(502), 502, "bad-response", "answered 502", 2, id="502-retried-once"),
    pytest.param(answer(503), 502, "bad-response", "answered 503", 2, id="503-retried-once"),
    pytest.param(answer(504), 502, "bad-response", "answered 504", 2, id="504-retried-once"),
    pytest.param(answer(404, "{}"), 502, "bad-response", "answered 404", 1, id="404"),
    pytest.param(answer(302, location="http://127.0.0.1:9/"), 502, "bad-response", "answered 302", 1, id="redirect"),
    pytest.param(answer(401), 502, "rejected-token", "rejected the forwarded token (401)", 1, id="401"),
    pytest.param(answer(403), 502, "rejected-token", "rejected the forwarded token (403)", 1, id="403"),
    pytest.param(answer(200, "<html>oops</html>", "text/html"), 502, "bad-response", "format", 1, id="html"),
    pytest.param(answer(200, ""), 502, "bad-response", "format", 1, id="empty-body"),
    pytest.param(answer(200, b"\xff\xfe\x00garbage"), 502, "bad-response", "format", 1, id="binary"),
    pytest.param(answer(200, "[" * 100_000 + "]" * 100_000), 502, "bad-response", "format", 1, id="deep-nesting"),
    pytest.param(json_answer([]), 502, "bad-response", "format", 1, id="json-list"),
    pytest.param(json_answer({"orders": [], "pagination": None}), 502, "bad-response", "format", 1, id="null-pagi"),
    pytest.param(page_answer(_without("pagination")), 502, "bad-response", "format", 1, id="no-pagination"),
    pytest.param(page_answer(_without("orders")), 502, "bad-response", "format", 1, id="no-orders"),
    pytest.param(page_answer(_set_order(status="lost")), 502, "bad-response", "format", 1, id="unknown-status"),
    pytest.param(page_answer(_set_order(total_amount="12,50")), 502, "bad-response", "format", 1, id="comma-amount"),
    pytest.param(page_answer(_set_order(total_amount="NaN")), 502, "bad-response", "format", 1, id="nan-amount"),
    pytest.param(page_answer(_set_order(total_amount=True)), 502, "bad-response", "format", 1, id="bool-amount"),
    pytest.param(page_answer(_set_order(total_amount="1e12")), 502, "bad-response", "format", 1, id="huge-amount"),
    pytest.param(page_answer(_set_order(id="ORD-1")), 502, "bad-response", "format", 1, id="id-not-uuid"),
    pytest.param(page_answer(_set_order(created_at="yesterday")), 502, "bad-response", "format", 1, id="bad-date"),
    pytest.param(page_answer(_foreign), 502, "bad-response", "another customer", 1, id="foreign-order"),
    pytest.param(
        page_answer(lambda d: d.update(orders=d["orders"] * 101)), 502, "bad-response", "format", 1, id="101-orders"
    ),
    pytest.param(
        answer(200, b"not gzip at all", **{"content-encoding": "gzip"}),
        502,
        "bad-response",
        "cannot be read",
        1,
        id="broken-gzip",
    ),
    pytest.param(answer(200, b" " * BIG), 502, "bad-response", "larger than 5 MiB", 1, id="over-5MiB-declared"),
    pytest.param(streamed(BIG), 502, "bad-response", "larger than 5 MiB", 1, id="over-5MiB-chunked"),
]


@pytest.mark.parametrize(("behaviour", "status", "kind", "detail", "requests"), BAD_ANSWERS)
async def test_bad_answers(
    shared: Shared, behaviour: Behaviour, status: int, kind: str, detail: str, requests: int
) -> None:
    crm, stub = shared.crm, shared.stub
    stub.behaviour = behaviour

    orders, orders_took = await timed_get(crm, f"/api/customers/{shared.customer_id}/orders", shared.headers)
    orders_requests = stub.count
    stats, stats_took = await timed_get(crm, f"/api/customers/{shared.customer_id}/statistics", shared.headers)

    problem = assert_problem(orders, status)
    assert problem["type"] == f"urn:crm:problem:order-service-{kind}"
    assert detail in problem["detail"]
    assert detail in unavailable(stats)
    assert orders_requests == requests
    assert stub.count == 2 * requests
    assert orders_took < PROMPT
    assert stats_took < PROMPT


async def test_a_body_of_exactly_5_mib_is_accepted(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    document = page_of([order(customer_id, 0, amount="7.00")], 1, 10)
    body = json.dumps(document).encode()
    stub.script.extend([answer(200, body.ljust(MAX_RESPONSE_BYTES)), streamed(MAX_RESPONSE_BYTES)])

    declared = await crm.http.get(f"/api/customers/{customer_id}/orders", headers=admin)
    chunked = await crm.http.get(f"/api/customers/{customer_id}/orders", headers=admin)

    assert declared.status_code == 200, declared.text
    assert declared.json()["orders"][0]["total_amount"] == "7.00"
    # 5 MiB of blanks is within the cap; it fails only as JSON.
    assert "format" in assert_problem(chunked, 502)["detail"]


# --- the retry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_one_retry_then_success(shared: Shared, status: int) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = [order(customer_id, 0, amount="3.50")]
    stub.script.append(answer(status))

    response = await crm.http.get(
        f"/api/customers/{customer_id}/orders?limit=5", headers={**admin, "X-Request-ID": "retry-me"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["orders"][0]["total_amount"] == "3.50"
    assert stub.count == 2
    first, second = stub.requests
    assert first.params == second.params == {"customerId": customer_id, "page": "1", "limit": "5"}
    assert first.headers["authorization"] == second.headers["authorization"] == admin["Authorization"]
    assert first.headers["x-request-id"] == second.headers["x-request-id"] == "retry-me"
    assert crm.breaker.failures == 0


async def test_statistics_retry_a_page_once(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = [order(customer_id, n, amount="1.00") for n in range(150)]
    stub.behaviour = per_page({2: answer(503)})
    stub.script.append(answer(503))  # page 1, first attempt

    response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    # Page 1 recovered on its retry; page 2 failed twice.
    assert response.json()["orders"] == {"available": False, "reason": "the Order Service answered 503"}
    assert [r.params["page"] for r in stub.requests] == ["1", "1", "2", "2"]

    stub.behaviour = None
    stub.script.append(answer(502))
    response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)
    assert response.json()["orders"]["totalAmount"] == 150.0
    assert stub.count == 4 + 3


async def test_a_dropped_connection_is_retried_once(
    make_crm: MakeCrm, make_customer: MakeCustomer, admin: dict[str, str]
) -> None:
    replies: list[bytes | None] = []  # read per connection, so they can name the customer
    with start_raw_server(replies) as (url, heads):
        async with make_crm(url) as crm:
            customer_id = await make_customer(crm)
            page = page_of([order(customer_id, 0, amount="9.99")], 1, 10)
            # dropped, answered (the retry); then dropped twice
            replies.extend([None, http_reply(page), None, None])

            recovered = await crm.http.get(f"/api/customers/{customer_id}/orders", headers=admin)
            dropped_twice = await crm.http.get(f"/api/customers/{customer_id}/orders", headers=admin)

    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["orders"][0]["total_amount"] == "9.99"
    problem = assert_problem(dropped_twice, 503)
    assert problem["type"] == "urn:crm:problem:order-service-unavailable"
    assert len(heads) == 4
    assert all(head.startswith(b"GET /api/orders?customerId=" + customer_id.encode()) for head in heads)
