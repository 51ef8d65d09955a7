"""GET /api/customers/{id}/statistics: the CRM's own figures plus all of the customer's orders.

Tests that only read their customer use the module's shared app (see `shared` in conftest.py);
those that write interactions or need another timeout build their own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from tests.helpers import create_customer
from tests.orders.conftest import Crm, MakeCrm, Shared
from tests.orders.stub import LazyOrders, StubOrderService, answer, order, per_page, slow

EMPTY_INTERACTIONS = {
    "total": 0,
    "byType": {"call": 0, "email": 0, "meeting": 0, "note": 0, "task": 0},
    "firstInteractionDate": None,
    "lastInteractionDate": None,
}


def exact(response: httpx.Response) -> dict[str, Any]:
    """The body with JSON numbers read as Decimals, so 0.30 stays 0.30 and 71302.5 != 71302.50."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = json.loads(response.text, parse_float=Decimal)
    return body


async def test_aggregates_orders_over_several_pages(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    # 250 orders: three pages of 100. Amounts mix decimal strings and JSON numbers.
    amounts: list[str | float] = ["0.10", 1250.99, "99.95"]
    orders = [
        order(customer_id, n, amount=amounts[n % 3], status="cancelled" if n % 5 == 0 else "delivered")
        for n in range(250)
    ]
    # The newest order sits on page 2, not at either end.
    orders[150] = order(customer_id, 150, amount="0.10", status="returned", created_at="2025-12-31T23:00:00.000Z")
    stub.orders[customer_id] = orders

    response = await crm.http.get(
        f"/api/customers/{customer_id}/statistics", headers={**admin, "X-Request-ID": "stats-1"}
    )

    body = exact(response)
    # 84 x 0.10 + 83 x 1250.99 + 83 x 99.95 = 8.40 + 103832.17 + 8295.85
    assert body["orders"] == {
        "available": True,
        "total": 250,
        "totalAmount": Decimal("112136.42"),
        "averageAmount": Decimal("448.55"),  # 448.54568 rounded half up
        "lastOrderDate": "2025-12-31T23:00:00+00:00",
        "byStatus": {"cancelled": 49, "delivered": 200, "returned": 1},
    }
    assert '"totalAmount":112136.42' in response.text
    assert [r.params for r in stub.requests] == [
        {"customerId": customer_id, "page": str(p), "limit": "100"} for p in (1, 2, 3)
    ]
    assert {r.headers["authorization"] for r in stub.requests} == {admin["Authorization"]}
    assert {r.headers["x-request-id"] for r in stub.requests} == {"stats-1"}


async def test_sums_are_exact_decimals(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    # In binary floating point 0.1 + 0.1 + 0.1 == 0.30000000000000004.
    stub.orders[customer_id] = [order(customer_id, n, amount="0.10") for n in range(3)]

    response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    orders = exact(response)["orders"]
    assert orders["totalAmount"] == Decimal("0.30")
    assert orders["averageAmount"] == Decimal("0.10")
    # Rendered as JSON numbers with exactly two decimals.
    assert '"totalAmount":0.30,' in response.text
    assert '"averageAmount":0.10,' in response.text


async def test_numbers_and_strings_sum_alike(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = [
        order(customer_id, 0, amount=1250.99),
        order(customer_id, 1, amount="1250.99"),
        order(customer_id, 2, amount=0.02),
        order(customer_id, 3, amount=3),
    ]

    orders = exact(await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin))["orders"]

    assert orders["totalAmount"] == Decimal("2505.00")
    assert str(orders["totalAmount"]) == "2505.00"
    assert orders["averageAmount"] == Decimal("626.25")


async def test_amounts_with_float_noise_are_rounded_to_cents_once(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    # A deployment sending JSON numbers computed in floats: 0.1 + 0.2 and a half-cent.
    stub.orders[customer_id] = [
        order(customer_id, 0, amount=0.30000000000000004),
        order(customer_id, 1, amount="0.125"),
        order(customer_id, 2, amount="0.125"),
    ]

    listed = (await crm.http.get(f"/api/customers/{customer_id}/orders", headers=admin)).json()["orders"]
    stats = exact(await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin))["orders"]

    # What the list shows adds up to what the statistics say.
    assert [o["total_amount"] for o in listed] == ["0.30", "0.13", "0.13"]
    assert stats["totalAmount"] == Decimal("0.56")


async def test_customer_without_orders(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    body = exact(response)
    assert body == {
        "customer_id": customer_id,
        "contacts": {"total": 1},
        "interactions": EMPTY_INTERACTIONS,
        "orders": {
            "available": True,
            "total": 0,
            "totalAmount": Decimal("0.00"),
            "averageAmount": None,
            "lastOrderDate": None,
            "byStatus": {},
        },
    }
    assert stub.count == 1


async def test_over_10000_orders_are_truncated(
    make_crm: MakeCrm, stub: StubOrderService, admin: dict[str, str]
) -> None:
    # 100 pages take well under a second locally; the generous timeout keeps slow CI green.
    async with make_crm(stub.url, order_timeout=15.0) as crm:
        customer_id = (await create_customer(crm.http, admin))["id"]
        stub.orders[customer_id] = LazyOrders(customer_id, 10_001, amount="1.25")

        response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    orders = exact(response)["orders"]
    assert orders == {
        "available": True,
        "total": 10_001,  # the Order Service's count ...
        "totalAmount": Decimal("12500.00"),  # ... while the sums cover the first 10,000
        "averageAmount": Decimal("1.25"),
        "lastOrderDate": "2024-01-07T22:39:00+00:00",  # order 9,999: 2024-01-01 + 9,999 minutes
        "byStatus": {"cancelled": 2500, "delivered": 7500},
        "truncated": True,
    }
    assert stub.count == 100
    assert sorted(int(r.params["page"]) for r in stub.requests) == list(range(1, 101))
    assert {r.params["limit"] for r in stub.requests} == {"100"}


async def test_exactly_10000_orders_are_not_truncated(
    make_crm: MakeCrm, stub: StubOrderService, admin: dict[str, str]
) -> None:
    async with make_crm(stub.url, order_timeout=15.0) as crm:
        customer_id = (await create_customer(crm.http, admin))["id"]
        stub.orders[customer_id] = LazyOrders(customer_id, 10_000, amount="0.01")

        response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    orders = exact(response)["orders"]
    assert orders["total"] == 10_000
    assert orders["totalAmount"] == Decimal("100.00")
    assert "truncated" not in orders
    assert stub.count == 100


async def test_untrusted_total_pages_is_capped(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    lying = {
        "orders": [order(customer_id, 0, amount="2.00")],
        "pagination": {"total": 1, "page": 1, "limit": 100, "totalPages": 1_000_000, "hasNext": True, "hasPrev": False},
    }
    stub.behaviour = answer(200, json.dumps(lying))

    response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    orders = exact(response)["orders"]
    # The same order on every page is counted once; never more than 100 pages are read.
    assert orders["totalAmount"] == Decimal("2.00")
    assert orders["total"] == 1
    assert stub.count == 100


async def test_mixed_naive_and_aware_dates(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    # A date without an offset is taken as UTC (the Order Service's dates are UTC).
    stub.orders[customer_id] = [
        order(customer_id, 0, created_at="2025-06-15T10:00:00"),
        order(customer_id, 1, created_at="2025-06-16T09:00:00.000Z"),
        order(customer_id, 2, created_at="2025-06-16T12:00:00+02:00"),
    ]

    stats = exact(await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin))["orders"]
    listed = (await crm.http.get(f"/api/customers/{customer_id}/orders", headers=admin)).json()["orders"]

    assert stats["lastOrderDate"] == "2025-06-16T10:00:00+00:00"
    assert datetime.fromisoformat(listed[0]["created_at"]) == datetime(2025, 6, 15, 10, tzinfo=UTC)


async def test_crm_figures_on_known_data(
    crm: Crm,
    stub: StubOrderService,
    admin: dict[str, str],
    db: asyncpg.Connection[Any],
) -> None:
    created = await create_customer(
        crm.http, admin, contacts=[{"first_name": "A", "last_name": "One"}, {"first_name": "B", "last_name": "Two"}]
    )
    other = await create_customer(crm.http, admin, contacts=[{"first_name": "C", "last_name": "Three"}])
    customer_id = created["id"]
    user = uuid.uuid4()
    rows = [
        (customer_id, "call", datetime(2025, 2, 1, 9, tzinfo=UTC)),
        (customer_id, "call", datetime(2025, 1, 5, 8, 30, tzinfo=UTC)),
        (customer_id, "call", datetime(2025, 3, 1, 17, tzinfo=UTC)),
        (customer_id, "email", datetime(2025, 2, 2, tzinfo=UTC)),
        (customer_id, "email", datetime(2025, 2, 3, tzinfo=UTC)),
        (customer_id, "meeting", datetime(2025, 2, 10, 14, tzinfo=UTC)),
        # Another customer's interactions, earlier and later: not counted.
        (other["id"], "note", datetime(2024, 1, 1, tzinfo=UTC)),
        (other["id"], "task", datetime(2026, 1, 1, tzinfo=UTC)),
    ]
    await db.executemany(
        "INSERT INTO interactions (customer_id, user_id, type, subject, date) VALUES ($1, $2, $3, 'subject', $4)",
        [(uuid.UUID(c), user, t, d) for c, t, d in rows],
    )
    stub.orders[customer_id] = [order(customer_id, 0, amount="71302.50", status="delivered")]

    response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    body = exact(response)
    assert body["customer_id"] == customer_id
    assert body["contacts"] == {"total": 2}
    assert body["interactions"] == {
        "total": 6,
        "byType": {"call": 3, "email": 2, "meeting": 1, "note": 0, "task": 0},
        "firstInteractionDate": "2025-01-05T08:30:00+00:00",
        "lastInteractionDate": "2025-03-01T17:00:00+00:00",
    }
    assert body["orders"]["totalAmount"] == Decimal("71302.50")
    assert '"totalAmount":71302.50,' in response.text


async def test_a_failing_page_makes_orders_unavailable_and_stops_the_other_reads(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = LazyOrders(customer_id, 2_000)  # 20 pages
    slow_pages = {p: slow(0.3) for p in range(3, 21)}
    stub.behaviour = per_page({2: answer(500), **slow_pages})

    response = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    body = exact(response)
    assert body["orders"] == {"available": False, "reason": "the Order Service answered 500"}
    assert body["contacts"] == {"total": 1}
    # Once the answer is known the remaining pages are abandoned, not read in the background
    # (where their failures would trip the breaker long after this request ended).
    await asyncio.sleep(0.6)  # two more rounds of slow pages, had they gone on
    assert stub.count <= 5, [r.params["page"] for r in stub.requests]
    assert crm.breaker.failures == 1
    assert crm.breaker.opened_at is None
