"""`crm fake-order-service`: deterministic orders in the documented format, served over real HTTP."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

import httpx
import pytest

from crm.orders.fake_server import create_fake_app, fake_orders
from crm.orders.schemas import OrdersPage
from tests.helpers import create_customer
from tests.orders.conftest import MakeCrm
from tests.orders.stub import start_server

TWO_DECIMALS = re.compile(r"^\d+\.\d{2}$")
FakeServer = Callable[[int], AbstractContextManager[str]]


@pytest.fixture
def fake_server() -> FakeServer:
    return lambda orders_per_customer: start_server(create_fake_app(orders_per_customer))


@pytest.fixture
async def fake(fake_server: FakeServer) -> AsyncIterator[httpx.AsyncClient]:
    with fake_server(37) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            yield http


async def get_page(http: httpx.AsyncClient, customer_id: uuid.UUID | str, **params: Any) -> dict[str, Any]:
    response = await http.get("/api/orders", params={"customerId": str(customer_id), **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_pages_are_deterministic_and_in_the_documented_format(fake: httpx.AsyncClient) -> None:
    customer = uuid.UUID("3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f")

    first = await get_page(fake, customer, page=1, limit=10)
    again = await get_page(fake, customer, page=1, limit=10)

    assert first == again
    page = OrdersPage.model_validate(first)
    assert first["pagination"] == {
        "total": 37,
        "page": 1,
        "limit": 10,
        "totalPages": 4,
        "hasNext": True,
        "hasPrev": False,
    }
    assert len(page.orders) == 10
    for wire, parsed in zip(first["orders"], page.orders, strict=True):
        assert parsed.customer_id == customer
        assert TWO_DECIMALS.match(wire["total_amount"]), wire["total_amount"]
        assert wire["created_at"].endswith("Z")
        assert wire["order_number"].startswith("ORD-")
        assert parsed.items, "every fake order has items"
        for item in parsed.items:
            assert item.total_price == item.unit_price * item.quantity
        assert parsed.total_amount == sum((i.total_price for i in parsed.items), Decimal(0))
    # Newest first by default.
    created = [o.created_at for o in page.orders]
    assert created == sorted(created, reverse=True)


async def test_pages_cover_every_order_once(fake: httpx.AsyncClient) -> None:
    customer = uuid.uuid4()

    pages = [await get_page(fake, customer, page=p, limit=10) for p in (1, 2, 3, 4, 5)]

    ids = [o["id"] for p in pages for o in p["orders"]]
    assert len(ids) == len(set(ids)) == 37
    assert [len(p["orders"]) for p in pages] == [10, 10, 10, 7, 0]
    assert pages[3]["pagination"]["hasNext"] is False
    assert pages[3]["pagination"]["hasPrev"] is True
    assert ids == [o["id"] for o in fake_orders_sorted(customer, 37)]


def fake_orders_sorted(customer: uuid.UUID, count: int) -> list[dict[str, Any]]:
    return sorted(fake_orders(customer, count), key=lambda o: str(o["created_at"]), reverse=True)


async def test_customers_get_different_orders(fake: httpx.AsyncClient) -> None:
    one = await get_page(fake, uuid.uuid4(), limit=100)
    other = await get_page(fake, uuid.uuid4(), limit=100)

    assert {o["id"] for o in one["orders"]}.isdisjoint(o["id"] for o in other["orders"])


async def test_filter_sort_and_limits(fake: httpx.AsyncClient) -> None:
    customer = uuid.UUID(int=42)
    everything = (await get_page(fake, customer, limit=100))["orders"]
    delivered = await get_page(fake, customer, status="delivered", limit=100)
    by_amount = await get_page(fake, customer, sortBy="total_amount", sortOrder="ASC", limit=100)
    capped = await get_page(fake, customer, limit=1000)

    assert delivered["pagination"]["total"] == sum(o["status"] == "delivered" for o in everything) > 0
    assert {o["status"] for o in delivered["orders"]} == {"delivered"}
    amounts = [Decimal(o["total_amount"]) for o in by_amount["orders"]]
    assert amounts == sorted(amounts)
    assert len(amounts) == 37
    assert capped["pagination"]["limit"] == 100
    assert (await fake.get("/api/orders", params={"customerId": "nope"})).status_code == 400


async def test_the_crm_reads_the_fake_service(
    make_crm: MakeCrm, fake_server: FakeServer, admin: dict[str, str]
) -> None:
    # 5,000 orders: 50 pages for the statistics, within the default 5 s timeout.
    with fake_server(5_000) as url:
        async with make_crm(url, order_timeout=5.0) as crm:
            customer_id = (await create_customer(crm.http, admin))["id"]
            listed = await crm.http.get(f"/api/customers/{customer_id}/orders?limit=3", headers=admin)
            stats = await crm.http.get(f"/api/customers/{customer_id}/statistics", headers=admin)

    assert listed.status_code == 200, listed.text
    assert listed.json()["pagination"]["total"] == 5_000
    assert len(listed.json()["orders"]) == 3
    orders = fake_orders(uuid.UUID(customer_id), 5_000)
    figures = json.loads(stats.text, parse_float=Decimal)["orders"]
    assert figures["available"] is True, figures
    assert figures["total"] == 5_000
    assert figures["totalAmount"] == sum((Decimal(o["total_amount"]) for o in orders), Decimal(0))
    assert sum(figures["byStatus"].values()) == 5_000
