"""Every history entry is one event in the outbox, numbered per customer in commit order; none for a rollback."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import asyncpg
import httpx

from crm.events.outbox import envelope
from tests.helpers import create_customer, customer_body
from tests.history.support import history


async def _events(db: asyncpg.Connection[Any], customer_id: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM events WHERE customer_id = $1 ORDER BY sequence", uuid.UUID(customer_id))


async def test_each_entry_is_an_event_with_its_id_and_the_record_after_the_change(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, status="lead", contacts=[{"first_name": "A", "last_name": "B"}])
    updated = await client.put(
        f"/api/customers/{customer['id']}", json={"status": "active"}, headers={**admin, "X-Request-ID": "req-e1"}
    )
    assert updated.status_code == 200, updated.text

    entries = list(reversed(await history(client, admin, customer["id"])))
    events = await _events(db, customer["id"])
    assert [str(e["id"]) for e in events] == [entry["id"] for entry in entries]
    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert [e["type"] for e in events] == ["crm.customer.created", "crm.contact.created", "crm.customer.updated"]
    assert [str(e["subject"]) for e in events] == [entry["entity_id"] for entry in entries]

    last = envelope(events[-1])
    assert last["specversion"] == "1.0"
    assert last["source"] == "crm-service"
    assert last["customerid"] == customer["id"]
    assert last["sequence"] == "3"
    assert last["time"].endswith("Z")
    data = last["data"]
    assert data["changes"] == {"status": {"old": "lead", "new": "active"}}
    assert data["actor"] == entries[-1]["actor"]
    assert data["request_id"] == "req-e1"
    assert data["customer"]["status"] == "active"
    assert data["customer"]["version"] == updated.json()["version"]
    assert data["customer"]["email"] == customer["email"]


async def test_a_rolled_back_request_writes_no_event(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    taken = await create_customer(client, admin)
    other = await create_customer(client, admin)
    before = await db.fetchval("SELECT count(*) FROM events")

    # Flushed (its entry and event would follow), then refused by the unique email index.
    refused = await client.put(f"/api/customers/{other['id']}", json={"email": taken["email"]}, headers=admin)
    assert refused.status_code == 409
    duplicate = await client.post(
        "/api/customers",
        json=customer_body(email=taken["email"], contacts=[{"first_name": "A", "last_name": "B"}]),
        headers=admin,
    )
    assert duplicate.status_code == 409

    assert await db.fetchval("SELECT count(*) FROM events") == before
    # The next change of `other` takes the next number: the refused one left no gap.
    assert (await client.put(f"/api/customers/{other['id']}", json={"notes": "x"}, headers=admin)).is_success
    assert [e["sequence"] for e in await _events(db, other["id"])] == [1, 2]


async def test_a_customer_delete_announces_each_record_it_took_then_itself(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    interaction = await client.post(
        "/api/interactions",
        json={"customer_id": customer["id"], "type": "call", "subject": "Renewal call"},
        headers=admin,
    )
    assert interaction.status_code == 201, interaction.text
    assert (await client.delete(f"/api/customers/{customer['id']}", headers=admin)).status_code == 204

    events = await _events(db, customer["id"])
    assert [e["sequence"] for e in events] == list(range(1, 7))
    assert [e["type"] for e in events[3:]] == [
        "crm.contact.deleted",
        "crm.interaction.deleted",
        "crm.customer.deleted",
    ]
    contact_gone, interaction_gone, customer_gone = (envelope(e)["data"] for e in events[3:])
    assert contact_gone["contact"]["id"] == customer["primary_contact"]["id"]
    assert interaction_gone["interaction"]["subject"] == "Renewal call"
    assert customer_gone["customer"]["id"] == customer["id"]
    assert contact_gone["actor"] == customer_gone["actor"]
    # Every event is one history entry, the children's included.
    entries = await db.fetch("SELECT id FROM history WHERE customer_id = $1", uuid.UUID(customer["id"]))
    assert {e["id"] for e in entries} == {e["id"] for e in events}


async def test_twenty_concurrent_writers_on_five_customers_number_each_customers_events_in_commit_order(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customers = [await create_customer(client, admin) for _ in range(5)]
    rng = random.Random(12)

    async def writer(n: int) -> None:
        for step in range(6):
            customer = rng.choice(customers)
            kind = (n + step) % 3
            if kind == 0:
                response = await client.put(
                    f"/api/customers/{customer['id']}", json={"notes": f"w{n}-{step}"}, headers=admin
                )
            elif kind == 1:
                response = await client.post(
                    "/api/contacts",
                    json={"customer_id": customer["id"], "first_name": f"W{n}", "last_name": f"S{step}"},
                    headers=admin,
                )
            else:
                response = await client.post(
                    "/api/interactions",
                    json={"customer_id": customer["id"], "type": "note", "subject": f"w{n}-{step}"},
                    headers=admin,
                )
            assert response.is_success, response.text

    await asyncio.gather(*(writer(n) for n in range(20)))

    for customer in customers:
        events = await _events(db, customer["id"])
        # 1..n with no gap, and sequence order is the order the rows were written (commit order).
        assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
        assert [e["position"] for e in events] == sorted(e["position"] for e in events)
        updates = [e for e in events if e["type"] == "crm.customer.updated"]
        assert [envelope(e)["data"]["customer"]["version"] for e in updates] == list(range(2, len(updates) + 2))
        count = await db.fetchval("SELECT last FROM event_sequences WHERE customer_id = $1", uuid.UUID(customer["id"]))
        assert count == len(events)
    assert await db.fetchval("SELECT count(*) FROM events") == await db.fetchval("SELECT count(*) FROM history")
