"""GET /api/customers/{id}/orders against a healthy stub: forwarding, validation, relaying.

These tests only read their customer, so they share one app and database per module
(see `shared` in conftest.py); the stub and the breaker start afresh for each.
"""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import assert_problem
from tests.orders.conftest import Shared
from tests.orders.stub import order


async def test_forwards_customer_id_paging_and_filters(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    response = await crm.http.get(
        f"/api/customers/{customer_id}/orders",
        params={"page": 3, "limit": 25, "status": "shipped", "sortBy": "total_amount", "sortOrder": "asc"},
        headers={**admin, "X-Request-ID": "req-orders-42"},
    )

    assert response.status_code == 200, response.text
    assert stub.count == 1
    seen = stub.requests[0]
    assert seen.method == "GET"
    assert seen.path == "/api/orders"
    assert seen.params == {
        "customerId": customer_id,
        "page": "3",
        "limit": "25",
        "status": "shipped",
        "sortBy": "total_amount",
        "sortOrder": "ASC",  # normalised: the Order Service documents upper case
    }
    assert seen.headers["authorization"] == admin["Authorization"]
    assert seen.headers["x-request-id"] == "req-orders-42"
    assert response.headers["x-request-id"] == "req-orders-42"


async def test_defaults_are_forwarded_and_unset_filters_are_not(shared: Shared) -> None:
    crm, stub, customer_id = shared.crm, shared.stub, shared.customer_id
    employee = shared.tokens.headers("employee")
    response = await crm.http.get(f"/api/customers/{customer_id}/orders", headers=employee)

    assert response.status_code == 200, response.text
    assert stub.requests[0].params == {"customerId": customer_id, "page": "1", "limit": "10"}
    assert stub.requests[0].headers["authorization"] == employee["Authorization"]


async def test_generated_request_id_is_forwarded(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    response = await crm.http.get(f"/api/customers/{customer_id}/orders", headers=admin)

    assert response.status_code == 200
    generated = response.headers["x-request-id"]
    assert len(generated) >= 16
    assert stub.requests[0].headers["x-request-id"] == generated


async def test_pagination_is_passed_through(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = [order(customer_id, n) for n in range(25)]

    response = await crm.http.get(f"/api/customers/{customer_id}/orders?page=2&limit=10", headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pagination"] == {
        "total": 25,
        "page": 2,
        "limit": 10,
        "totalPages": 3,
        "hasNext": True,
        "hasPrev": True,
    }
    assert [o["order_number"] for o in body["orders"]] == [f"ORD-{n:06d}" for n in range(10, 20)]
    assert [o["id"] for o in body["orders"]] == [o["id"] for o in stub.orders[customer_id][10:20]]


async def test_last_and_empty_pages(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = [order(customer_id, n) for n in range(25)]

    last = (await crm.http.get(f"/api/customers/{customer_id}/orders?page=3&limit=10", headers=admin)).json()
    beyond = (await crm.http.get(f"/api/customers/{customer_id}/orders?page=9&limit=10", headers=admin)).json()

    assert len(last["orders"]) == 5
    assert last["pagination"]["hasNext"] is False
    assert beyond["orders"] == []
    assert beyond["pagination"]["total"] == 25


async def test_orders_are_relayed_with_amounts_as_two_decimal_strings(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = [
        order(customer_id, 0, amount="1250.99", status="processing", internal_margin="0.42"),
        order(customer_id, 1, amount=1250.99),  # some deployments send JSON numbers
        order(customer_id, 2, amount=5),
        order(customer_id, 3, amount="0.10"),
    ]

    response = await crm.http.get(f"/api/customers/{customer_id}/orders", headers=admin)

    assert response.status_code == 200, response.text
    orders = response.json()["orders"]
    assert [o["total_amount"] for o in orders] == ["1250.99", "1250.99", "5.00", "0.10"]
    assert [o["items"][0]["unit_price"] for o in orders] == ["1250.99", "1250.99", "5.00", "0.10"]
    first = orders[0]
    sent = stub.orders[customer_id][0]
    for key in ("id", "customer_id", "order_number", "shipping_city", "payment_method", "notes"):
        assert first[key] == sent[key], key
    assert first["status"] == "processing"
    assert first["created_at"].startswith("2025-01-01T00:00:00")
    assert first["items"][0]["quantity"] == 1
    # Only what was validated is relayed.
    assert "internal_margin" not in first


async def test_status_filter_reaches_the_order_service(shared: Shared) -> None:
    crm, stub, customer_id, admin = shared.crm, shared.stub, shared.customer_id, shared.headers
    stub.orders[customer_id] = [
        order(customer_id, n, status="cancelled" if n % 3 == 0 else "delivered") for n in range(9)
    ]

    response = await crm.http.get(f"/api/customers/{customer_id}/orders?status=cancelled", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert {o["status"] for o in body["orders"]} == {"cancelled"}
    assert body["pagination"]["total"] == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("page=0", "page"),
        ("status=lost", "status"),
        ("status=DELIVERED", "status"),
        ("sortOrder=sideways", "sortOrder"),
        ("sortBy=password", "sortBy"),
    ],
)
async def test_invalid_parameters_are_422_without_calling_the_order_service(
    shared: Shared, query: str, field: str
) -> None:
    response = await shared.crm.http.get(f"/api/customers/{shared.customer_id}/orders?{query}", headers=shared.headers)

    assert_problem(response, 422, field)
    assert shared.stub.count == 0


@pytest.mark.parametrize("endpoint", ["orders", "statistics"])
async def test_unknown_customer_is_404_without_calling_the_order_service(shared: Shared, endpoint: str) -> None:
    response = await shared.crm.http.get(f"/api/customers/{uuid.uuid4()}/{endpoint}", headers=shared.headers)

    assert_problem(response, 404)
    assert shared.stub.count == 0


@pytest.mark.parametrize("endpoint", ["orders", "statistics"])
async def test_malformed_customer_id_is_422(shared: Shared, endpoint: str) -> None:
    response = await shared.crm.http.get(f"/api/customers/not-a-uuid/{endpoint}", headers=shared.headers)

    assert_problem(response, 422, "customer_id")
    assert shared.stub.count == 0


@pytest.mark.parametrize("endpoint", ["orders", "statistics"])
async def test_callers_need_a_token_with_customers_read(shared: Shared, endpoint: str) -> None:
    path = f"/api/customers/{shared.customer_id}/{endpoint}"
    intern = shared.tokens.headers("intern")

    assert_problem(await shared.crm.http.get(path), 401)
    assert_problem(await shared.crm.http.get(path, headers=intern), 403)
    assert shared.stub.count == 0
