"""GET /api/events: published events in publication order, after a stable cursor; filters; bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from crm.events.outbox import envelope
from tests.helpers import assert_problem, create_customer


async def _published(db: asyncpg.Connection[Any], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while await db.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL"):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def _pages(client: httpx.AsyncClient, headers: dict[str, str], **query: Any) -> tuple[list[Any], str | None]:
    """Every event from the cursor on, page by page; and the last nextCursor."""
    events: list[Any] = []
    params = {"limit": 4, **query}
    while True:
        response = await client.get("/api/events", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        events += body["events"]
        cursor = body["pagination"]["nextCursor"]
        if not body["pagination"]["hasNext"]:
            return events, cursor
        params["after"] = cursor


async def test_the_feed_reads_every_published_event_in_publication_order_from_a_stable_cursor(
    client: httpx.AsyncClient, admin: dict[str, str], manager: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customers = [await create_customer(client, admin) for _ in range(3)]
    for n in range(3):
        for customer in customers:
            response = await client.put(f"/api/customers/{customer['id']}", json={"notes": f"n{n}"}, headers=admin)
            assert response.status_code == 200
    await _published(db)

    events, last_cursor = await _pages(client, manager)
    rows = await db.fetch("SELECT * FROM events ORDER BY feed_position")
    assert len(rows) == 12
    assert events == [envelope(row) for row in rows]

    # From a cursor in the middle: the same events again, however often it is read.
    first = (await client.get("/api/events", params={"limit": 5}, headers=admin)).json()
    middle = first["pagination"]["nextCursor"]
    assert first["pagination"]["hasNext"] is True
    again = [(await client.get("/api/events", params={"after": middle}, headers=admin)).json() for _ in range(2)]
    assert again[0] == again[1]
    assert again[0]["events"] == events[5:]

    # The last cursor: nothing yet, then exactly what is published after it.
    empty = (await client.get("/api/events", params={"after": last_cursor}, headers=admin)).json()
    assert empty["events"] == []
    assert empty["pagination"] == {"limit": 50, "hasNext": False, "nextCursor": last_cursor}
    response = await client.put(f"/api/customers/{customers[0]['id']}", json={"notes": "new"}, headers=admin)
    assert response.status_code == 200
    await _published(db)
    newer = (await client.get("/api/events", params={"after": last_cursor}, headers=admin)).json()
    assert [e["type"] for e in newer["events"]] == ["crm.customer.updated"]
    assert newer["events"][0]["sequence"] == "5"
    assert newer["events"][0]["customerid"] == customers[0]["id"]


async def test_the_feed_filters_by_type_and_customer(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    one = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    other = await create_customer(client, admin)
    for customer in (one, other):
        assert (await client.put(f"/api/customers/{customer['id']}", json={"notes": "x"}, headers=admin)).is_success
    await _published(db)

    updates, _ = await _pages(client, admin, type="crm.customer.updated")
    assert [(e["customerid"], e["type"]) for e in updates] == [
        (one["id"], "crm.customer.updated"),
        (other["id"], "crm.customer.updated"),
    ]
    ones, _ = await _pages(client, admin, customerId=one["id"])
    assert [e["sequence"] for e in ones] == ["1", "2", "3"]
    assert {e["customerid"] for e in ones} == {one["id"]}
    contact, _ = await _pages(client, admin, customerId=one["id"], type="crm.contact.created")
    assert [e["subject"] for e in contact] == [one["primary_contact"]["id"]]
    none, cursor = await _pages(client, admin, type="crm.interaction.created")
    assert none == []
    assert cursor is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "eyJ4Ijp9"}, "after"),
        ({"type": "crm.customer.exploded"}, "type"),
        ({"type": "customer.updated"}, "type"),
        ({"customerId": "nope"}, "customerId"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
    ],
)
async def test_bad_feed_parameters_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], query: dict[str, Any], field: str
) -> None:
    assert_problem(await client.get("/api/events", params=query, headers=admin), 422, field)


async def test_a_cursor_of_another_list_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    assert (await client.put(f"/api/customers/{customer['id']}", json={"notes": "x"}, headers=admin)).is_success
    history = await client.get(f"/api/customers/{customer['id']}/history", params={"limit": 1}, headers=admin)
    cursor = history.json()["pagination"]["nextCursor"]
    assert cursor
    assert_problem(await client.get("/api/events", params={"after": cursor}, headers=admin), 422, "after")


async def test_who_may_read_the_feed_and_the_status(
    client: httpx.AsyncClient, admin: dict[str, str], manager: dict[str, str], employee: dict[str, str]
) -> None:
    assert (await client.get("/api/events", headers=admin)).status_code == 200
    assert (await client.get("/api/events", headers=manager)).status_code == 200
    assert_problem(await client.get("/api/events", headers=employee), 403)
    assert (await client.get("/api/events/status", headers=admin)).status_code == 200
    assert_problem(await client.get("/api/events/status", headers=manager), 403)
    assert_problem(await client.get("/api/events/status", headers=employee), 403)
    assert_problem(await client.get("/api/events"), 401)
