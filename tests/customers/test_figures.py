"""What each customer has ordered, on the customer: GET by id, the list (sorts, filters, cursor
pages across ties), search, write answers, bad values, the OpenAPI document, and the figures
equal to a direct sum over order_projections after the live consumer took the events."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from crm.config import Settings
from crm.orders.consumer import OrderEventsConsumer
from crm.orders.projection.service import OrderState, apply
from tests.helpers import assert_problem, create_customer
from tests.orders.projection.amqp import Broker, broker, order_event
from tests.orders.projection.helpers import sessionmaker_for

__all__ = ["broker"]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIGURE_KEYS = (
    "total_orders",
    "total_spent",
    "average_order_value",
    "first_order_date",
    "last_order_date",
    "orders_synced_at",
)


def order(customer: str, amount: str, days: int, status: str = "delivered", version: int = 1) -> OrderState:
    return OrderState(
        order_id=uuid.uuid4(),
        customer_id=uuid.UUID(customer),
        status=status,
        total_amount=Decimal(amount),
        created_at=T0 + timedelta(days=days),
        updated_at=T0 + timedelta(days=days),
        version=version,
    )


async def _apply(settings: Settings, database_url: str, states: list[OrderState]) -> None:
    async with sessionmaker_for(settings, database_url) as maker:
        await apply(maker, states)


async def _get(client: httpx.AsyncClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _figures(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in FIGURE_KEYS}


async def test_get_list_search_and_writes_carry_the_figures(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, database_url: str
) -> None:
    buyer = await create_customer(client, admin, first_name="Figurina", last_name="Buyer", email="buyer@example.com")
    never = await create_customer(client, admin, first_name="Figurina", last_name="Never", email="never@example.com")
    # Never synced: no orders, "0.00", no average, no dates, orders_synced_at null, on the write answer too.
    assert _figures(never) == {
        "total_orders": 0,
        "total_spent": "0.00",
        "average_order_value": None,
        "first_order_date": None,
        "last_order_date": None,
        "orders_synced_at": None,
    }
    await _apply(
        settings,
        database_url,
        [
            order(buyer["id"], "10.00", 0),
            order(buyer["id"], "20.01", 5),
            order(buyer["id"], "0.01", 9),
            order(buyer["id"], "999.00", 20, status="cancelled"),
            order(buyer["id"], "500.00", 30, status="returned"),
        ],
    )
    got = await _get(client, admin, f"/api/customers/{buyer['id']}")
    assert got["total_orders"] == 3
    assert got["total_spent"] == "30.02"
    assert got["average_order_value"] == "10.01"  # 30.02 / 3 = 10.0066..., to the cent half up
    assert got["first_order_date"] == _iso(T0)
    assert got["last_order_date"] == _iso(T0 + timedelta(days=9))
    assert got["orders_synced_at"] is not None
    assert _figures(await _get(client, admin, f"/api/customers/{never['id']}")) == _figures(never)

    listed = await _get(client, admin, "/api/customers")
    by_id = {c["id"]: c for c in listed["customers"]}
    assert _figures(by_id[buyer["id"]]) == _figures(got)
    assert _figures(by_id[never["id"]]) == _figures(never)
    searched = await _get(client, admin, "/api/customers/search", query="Figurina")
    assert {c["id"]: _figures(c) for c in searched} == {buyer["id"]: _figures(got), never["id"]: _figures(never)}
    filtered = await _get(client, admin, "/api/customers", search="Figurina", hasOrders="true")
    assert [c["id"] for c in filtered["customers"]] == [buyer["id"]]
    # A write's answer shows the same figures as a read (the ETag is the customer's, unmoved by orders).
    put = await client.put(f"/api/customers/{buyer['id']}", json={"notes": "orders a lot"}, headers=admin)
    assert put.status_code == 200, put.text
    assert _figures(put.json()) == _figures(got)
    assert put.json()["version"] == buyer["version"] + 1


@pytest.fixture
async def shop(client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, database_url: str) -> list[Any]:
    """14 customers: ties on every figure, some without orders, one whose orders are all cancelled."""
    customers = [
        await create_customer(
            client, admin, first_name=f"Shop{i:02d}", last_name="Customer", status="lead" if i % 3 else "active"
        )
        for i in range(14)
    ]
    ids = [c["id"] for c in customers]
    states = [
        # 0 and 1: the same amount, count and last date (a tie on every sort)
        order(ids[0], "50.00", 3),
        order(ids[1], "50.00", 3),
        # 2 and 3: the same total, different counts
        order(ids[2], "25.00", 1),
        order(ids[2], "25.00", 7),
        order(ids[3], "50.00", 7),
        order(ids[4], "1234.56", 40),
        order(ids[5], "0.99", 2),
        order(ids[5], "0.01", 3),
        order(ids[5], "5.00", 60),
        order(ids[6], "100.00", 12),
        order(ids[7], "100.00", 12),
        # 8: everything cancelled (a figures row with nothing counted: 0, like one without orders)
        order(ids[8], "70.00", 5, status="cancelled"),
    ]
    await _apply(settings, database_url, states)
    return ids


def _expected(rows: list[dict[str, Any]], sort_by: str, order_: str) -> list[str]:
    """The order the list must give: by the value, ties by id in the same direction; last_order_date
    puts customers without orders first ascending and last descending."""
    descending = order_ == "DESC"

    def value(row: dict[str, Any]) -> Any:
        raw = row[sort_by]
        if sort_by == "total_spent":
            return Decimal(raw)
        return raw

    with_value = [r for r in rows if value(r) is not None]
    without = [r for r in rows if value(r) is None]
    ordered = sorted(with_value, key=lambda r: (value(r), uuid.UUID(r["id"])), reverse=descending)
    nulls = sorted(without, key=lambda r: uuid.UUID(r["id"]), reverse=descending)
    result = nulls + ordered if not descending else ordered + nulls
    return [r["id"] for r in result]


async def _all_by_cursor(
    client: httpx.AsyncClient, headers: dict[str, str], limit: int, **params: Any
) -> tuple[list[str], int]:
    ids: list[str] = []
    body = await _get(client, headers, "/api/customers", limit=limit, **params)
    pages = 1
    ids += [c["id"] for c in body["customers"]]
    while "nextCursor" in body["pagination"]:
        body = await _get(
            client, headers, "/api/customers", limit=limit, cursor=body["pagination"]["nextCursor"], **params
        )
        ids += [c["id"] for c in body["customers"]]
        pages += 1
        assert pages < 50
    return ids, pages


@pytest.mark.parametrize("sort_by", ["total_spent", "total_orders", "last_order_date"])
@pytest.mark.parametrize("order_", ["ASC", "DESC"])
async def test_each_figure_sort_pages_by_cursor_and_offset_across_ties(
    client: httpx.AsyncClient, admin: dict[str, str], shop: list[str], sort_by: str, order_: str
) -> None:
    everyone = (await _get(client, admin, "/api/customers", limit=100))["customers"]
    assert len(everyone) == len(shop)
    expected = _expected(everyone, sort_by, order_)
    by_cursor, pages = await _all_by_cursor(client, admin, 3, sortBy=sort_by, sortOrder=order_)
    assert by_cursor == expected
    assert pages == 5
    by_offset: list[str] = []
    for page in range(1, 6):
        body = await _get(client, admin, "/api/customers", limit=3, page=page, sortBy=sort_by, sortOrder=order_)
        assert body["total"] == len(shop)
        by_offset += [c["id"] for c in body["customers"]]
    assert by_offset == expected
    # With a filter beside the sort (the figures walk joins the customers for it).
    leads = [c["id"] for c in everyone if c["status"] == "lead"]
    filtered, _ = await _all_by_cursor(client, admin, 2, sortBy=sort_by, sortOrder=order_, status="lead")
    assert filtered == [i for i in expected if i in leads]


async def test_sorting_by_total_spent_puts_the_biggest_first(
    client: httpx.AsyncClient, admin: dict[str, str], shop: list[str]
) -> None:
    body = await _get(client, admin, "/api/customers", sortBy="total_spent", limit=2)
    assert [c["total_spent"] for c in body["customers"]] == ["1234.56", "100.00"]
    body = await _get(client, admin, "/api/customers", sortBy="last_order_date", limit=1)
    assert body["customers"][0]["id"] == shop[5]  # ordered on day 60


def _last(row: dict[str, Any]) -> datetime | None:
    value = row["last_order_date"]
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _day(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def _last_in(low: datetime | None, high: datetime | None) -> Any:
    """Last order at or after `low` and strictly before `high`."""

    def wanted(row: dict[str, Any]) -> bool:
        last = _last(row)
        return last is not None and (low is None or last >= low) and (high is None or last < high)

    return wanted


NOON_13 = _day(13, 12)  # day 12 of the shop: 2026-03-13T12:00Z
FILTERS: list[tuple[dict[str, str], Any]] = [
    ({"minTotalSpent": "100"}, lambda r: Decimal(r["total_spent"]) >= 100),
    ({"minTotalSpent": "100.01"}, lambda r: Decimal(r["total_spent"]) >= Decimal("100.01")),
    ({"maxTotalSpent": "6"}, lambda r: Decimal(r["total_spent"]) <= 6),
    ({"minTotalSpent": "6", "maxTotalSpent": "100"}, lambda r: 6 <= Decimal(r["total_spent"]) <= 100),
    ({"minTotalSpent": "0"}, lambda r: True),
    ({"hasOrders": "true"}, lambda r: r["total_orders"] > 0),
    ({"hasOrders": "false"}, lambda r: r["total_orders"] == 0),
    # A date: before that day starts / after that day ends.
    ({"lastOrderBefore": "2026-03-13"}, _last_in(None, _day(13))),
    ({"lastOrderAfter": "2026-03-13"}, _last_in(_day(14), None)),
    ({"lastOrderAfter": "2026-03-12"}, _last_in(_day(13), None)),
    # A date-time: strictly before / after that moment.
    ({"lastOrderBefore": "2026-03-13T12:00:00Z"}, _last_in(None, NOON_13)),
    ({"lastOrderBefore": "2026-03-13T12:00:00.000001Z"}, _last_in(None, NOON_13 + timedelta(microseconds=1))),
    ({"lastOrderAfter": "2026-03-13T11:59:59Z"}, _last_in(NOON_13, None)),
    # The same moment as 12:00Z with an offset: not after it.
    ({"lastOrderAfter": "2026-03-13T14:00:00+02:00"}, _last_in(NOON_13 + timedelta(microseconds=1), None)),
    (
        {"lastOrderAfter": "2026-03-02", "lastOrderBefore": "2026-03-20", "hasOrders": "true", "status": "lead"},
        lambda r: r["status"] == "lead" and _last_in(_day(3), _day(20))(r),
    ),
]


@pytest.mark.parametrize(("params", "wanted"), FILTERS, ids=[str(p) for p, _ in FILTERS])
async def test_each_figure_filter(
    client: httpx.AsyncClient, admin: dict[str, str], shop: list[str], params: dict[str, str], wanted: Any
) -> None:
    everyone = (await _get(client, admin, "/api/customers", limit=100))["customers"]
    expected = {c["id"] for c in everyone if wanted(c)}
    body = await _get(client, admin, "/api/customers", limit=100, **params)
    assert {c["id"] for c in body["customers"]} == expected
    assert body["total"] == len(expected)
    assert "totalCapped" not in body["pagination"]
    # Sorted by a figure (NULLs too) or not, paged by cursor, nothing repeated or skipped.
    for sort_by, order_ in (("total_spent", "ASC"), ("last_order_date", "DESC"), ("created_at", "DESC")):
        paged, _ = await _all_by_cursor(client, admin, 2, sortBy=sort_by, sortOrder=order_, **params)
        assert paged == [i for i in _expected(everyone, sort_by, order_) if i in expected], sort_by


async def test_the_filters_select_something_and_leave_something_out(
    client: httpx.AsyncClient, admin: dict[str, str], shop: list[str]
) -> None:
    """The table above is not vacuous: each filter keeps some customers and drops others."""
    everyone = (await _get(client, admin, "/api/customers", limit=100))["customers"]
    for params, wanted in FILTERS:
        kept = [c for c in everyone if wanted(c)]
        if params == {"minTotalSpent": "0"}:
            assert len(kept) == len(everyone)
            continue
        assert 0 < len(kept) < len(everyone), params


BAD: list[tuple[dict[str, str], str]] = [
    ({"minTotalSpent": "abc"}, "minTotalSpent"),
    ({"minTotalSpent": "-1"}, "minTotalSpent"),
    ({"minTotalSpent": "1.234"}, "minTotalSpent"),
    ({"minTotalSpent": "1e400"}, "minTotalSpent"),
    ({"minTotalSpent": "NaN"}, "minTotalSpent"),
    ({"maxTotalSpent": "lots"}, "maxTotalSpent"),
    ({"maxTotalSpent": "-0.01"}, "maxTotalSpent"),
    ({"minTotalSpent": "10", "maxTotalSpent": "9.99"}, "minTotalSpent"),
    ({"hasOrders": "maybe"}, "hasOrders"),
    ({"hasOrders": ""}, "hasOrders"),
    ({"lastOrderBefore": "yesterday"}, "lastOrderBefore"),
    ({"lastOrderBefore": "2026-13-01"}, "lastOrderBefore"),
    ({"lastOrderAfter": "2026-02-30"}, "lastOrderAfter"),
    ({"lastOrderAfter": "x" * 65}, "lastOrderAfter"),
    ({"lastOrderAfter": "2026-03-10", "lastOrderBefore": "2026-03-10"}, "lastOrderAfter"),
    ({"sortBy": "total"}, "sortBy"),
    ({"sortBy": "average_order_value"}, "sortBy"),
]


@pytest.mark.parametrize(("params", "field"), BAD, ids=[str(p) for p, _ in BAD])
async def test_bad_figure_parameters_are_422_naming_them(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, str], field: str
) -> None:
    assert_problem(await client.get("/api/customers", params=params, headers=admin), 422, field)


async def test_a_cursor_of_one_figure_sort_is_refused_by_another(
    client: httpx.AsyncClient, admin: dict[str, str], shop: list[str]
) -> None:
    body = await _get(client, admin, "/api/customers", limit=2, sortBy="total_spent")
    cursor = body["pagination"]["nextCursor"]
    response = await client.get(
        "/api/customers", params={"sortBy": "total_orders", "cursor": cursor, "limit": 2}, headers=admin
    )
    assert_problem(response, 422, "cursor")


async def test_the_openapi_document_shows_the_parameters_and_the_figures(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    listing = document["paths"]["/api/customers"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"minTotalSpent", "maxTotalSpent", "hasOrders", "lastOrderBefore", "lastOrderAfter"} <= names
    sort = next(p for p in listing["parameters"] if p["name"] == "sortBy")
    assert {"total_spent", "total_orders", "last_order_date"} <= set(sort["schema"]["enum"])
    text = str(document["components"]["schemas"])
    for key in FIGURE_KEYS:
        assert key in text


# --- the live consumer, then the customers' answers ------------------------------------------


async def test_figures_on_the_customers_equal_a_direct_sum_after_consuming_events(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    settings: Settings,
    database_url: str,
    broker: Broker,
    db: asyncpg.Connection[Any],
) -> None:
    rng = random.Random(13)
    customers = [(await create_customer(client, admin, first_name=f"Live{i}"))["id"] for i in range(6)]
    events = []
    for _ in range(80):
        order_id = uuid.uuid4()
        for version in range(1, rng.randint(2, 5)):
            status = rng.choice(["new", "processing", "shipped", "delivered", "cancelled", "returned"])
            amount = f"{rng.randrange(1, 100_000) / 100:.2f}"
            kind = "deleted" if version > 2 and rng.random() < 0.1 else "updated"
            events.append(order_event(order_id, uuid.UUID(rng.choice(customers)), version, status, amount, kind=kind))
    sent = events + rng.sample(events, 40)
    rng.shuffle(sent)
    async with sessionmaker_for(settings, database_url) as maker:
        consumer = OrderEventsConsumer(maker, broker.url, exchange=broker.exchange, queue=broker.queue, prefetch=64)
        consumer.start()
        try:
            await asyncio.wait_for(consumer.connected.wait(), 10)
            for event in sent:
                await broker.publish(event, "order.deleted" if event["type"].endswith("deleted") else "order.updated")
            deadline = asyncio.get_running_loop().time() + 30
            while consumer.applied < len(sent):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
        finally:
            await consumer.stop()
    assert consumer.batches < len(sent)  # several messages per transaction
    direct = {
        r["customer_id"]: r
        for r in await db.fetch(
            """
            SELECT customer_id, count(*) AS n, sum(total_amount) AS spent, min(created_at) AS first,
                   max(created_at) AS last
            FROM order_projections WHERE NOT deleted AND status NOT IN ('cancelled', 'returned')
            GROUP BY customer_id
            """
        )
    }
    assert direct
    for customer in customers:
        got = await _get(client, admin, f"/api/customers/{customer}")
        row = direct.get(uuid.UUID(customer))
        if row is None:
            assert (got["total_orders"], got["total_spent"], got["average_order_value"]) == (0, "0.00", None)
            continue
        assert got["total_orders"] == row["n"]
        assert got["total_spent"] == f"{row['spent']:.2f}"
        assert got["average_order_value"] == f"{(row['spent'] / row['n']).quantize(Decimal('0.01'), ROUND_HALF_UP):.2f}"
        assert got["first_order_date"] == _iso(row["first"])
        assert got["last_order_date"] == _iso(row["last"])
        assert got["orders_synced_at"] is not None


async def test_orders_move_the_figures_not_the_customer_version_or_etag(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, database_url: str
) -> None:
    created = await client.post("/api/customers", json={"first_name": "Etag", "last_name": "Kept"}, headers=admin)
    assert created.status_code == 201, created.text
    customer = created.json()
    await _apply(settings, database_url, [order(customer["id"], "12.00", 1), order(customer["id"], "3.00", 2)])
    got = await client.get(f"/api/customers/{customer['id']}", headers=admin)
    assert got.json()["total_spent"] == "15.00"
    assert got.json()["version"] == customer["version"]
    assert got.headers["etag"] == created.headers["etag"]


async def test_a_customer_inserted_any_way_has_a_figures_row_and_unknown_ids_stay_out_of_lists(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    # Straight into the table (as an import would): the trigger gives it its figures row.
    inserted = await db.fetchval(
        "INSERT INTO customers (first_name, last_name, owner_id) VALUES ('Sql', 'Row', $1) RETURNING id", uuid.uuid4()
    )
    row = await db.fetchrow("SELECT * FROM customer_order_figures WHERE customer_id = $1", inserted)
    assert row is not None
    assert (row["total_orders"], row["total_spent"], row["orders_synced_at"]) == (0, Decimal("0.00"), None)
    # Orders of an id the CRM does not have (a deleted customer's): figures kept, never listed.
    stranger = uuid.uuid4()
    await _apply(settings, database_url, [order(str(stranger), "99999.00", 1)])
    assert await db.fetchval("SELECT total_orders FROM customer_order_figures WHERE customer_id = $1", stranger) == 1
    for params in ({"sortBy": "total_spent"}, {"minTotalSpent": "1"}, {"hasOrders": "true", "sortBy": "total_orders"}):
        body = await _get(client, admin, "/api/customers", **params)
        assert str(stranger) not in {c["id"] for c in body["customers"]}, params
    body = await _get(client, admin, "/api/customers", sortBy="total_spent")
    assert [c["id"] for c in body["customers"]] == [str(inserted)]
    assert body["total"] == 1
    assert (await _get(client, admin, "/api/customers", hasOrders="true"))["total"] == 0
