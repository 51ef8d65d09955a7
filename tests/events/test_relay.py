"""The relay in the app: every committed change published once to RabbitMQ, each customer's in order."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aio_pika
import asyncpg
import httpx

from crm.events.outbox import envelope
from tests.events.conftest import Broker, by_customer
from tests.helpers import create_customer, customer_body


async def _published(db: asyncpg.Connection[Any], within: float = 15.0) -> None:
    """Wait until the outbox has nothing left to publish."""
    deadline = asyncio.get_running_loop().time() + within
    while await db.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL"):
        assert asyncio.get_running_loop().time() < deadline, "the relay left events unpublished"
        await asyncio.sleep(0.05)


async def test_each_committed_change_is_published_once_with_its_properties(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], broker: Broker
) -> None:
    received = await broker.consume()
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    updated = await client.put(f"/api/customers/{customer['id']}", json={"notes": "x"}, headers=admin)
    assert updated.status_code == 200
    # Rolled back (duplicate email): no event, so nothing published for it.
    refused = await client.post("/api/customers", json=customer_body(email=customer["email"]), headers=admin)
    assert refused.status_code == 409

    await received.until(3)
    await _published(db)
    await asyncio.sleep(0.3)  # nothing more (no repeat) arrives
    rows = await db.fetch("SELECT * FROM events ORDER BY position")
    assert len(rows) == 3
    assert len(received.messages) == 3
    by_id = {m.message_id: m for m in received.messages}
    assert set(by_id) == {str(row["id"]) for row in rows}
    for row in rows:
        message = by_id[str(row["id"])]
        assert message.routing_key == row["type"].removeprefix("crm.")
        assert message.content_type == "application/cloudevents+json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.exchange == broker.exchange
        assert json.loads(message.body) == envelope(row)
        assert row["published_at"] is not None
    assert [m.routing_key for m in received.messages] == ["customer.created", "contact.created", "customer.updated"]
    # Feed positions follow publication order.
    assert [r["feed_position"] for r in rows] == sorted(r["feed_position"] for r in rows)
    assert len({r["feed_position"] for r in rows}) == 3


async def test_each_customers_events_arrive_in_sequence_order_under_20_concurrent_writers(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], broker: Broker
) -> None:
    received = await broker.consume()
    customers = [await create_customer(client, admin) for _ in range(5)]
    rng = random.Random(20)

    async def writer(n: int) -> None:
        for step in range(8):
            customer = rng.choice(customers)
            if (n + step) % 2:
                response = await client.put(
                    f"/api/customers/{customer['id']}", json={"notes": f"w{n}-{step}"}, headers=admin
                )
            else:
                response = await client.post(
                    "/api/interactions",
                    json={"customer_id": customer["id"], "type": "note", "subject": f"w{n}-{step}"},
                    headers=admin,
                )
            assert response.is_success, response.text

    await asyncio.gather(*(writer(n) for n in range(20)))
    total = await db.fetchval("SELECT count(*) FROM events")
    assert total == 5 + 20 * 8
    bodies = await received.until(total)
    counts = {str(r["customer_id"]): r["last"] for r in await db.fetch("SELECT * FROM event_sequences")}
    # In arrival order, each customer's events are 1, 2, 3... (repeats dropped by id).
    assert by_customer(bodies) == {customer: list(range(1, n + 1)) for customer, n in counts.items()}


async def test_requests_succeed_and_events_wait_while_the_broker_is_unreachable(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], app: Any, broker: Broker
) -> None:
    # Point the app's publisher at a port where nothing listens: the broker "is down".
    relay = app.state.events_relay
    publisher = relay.publisher
    await relay.stop()
    publisher.url = "amqp://guest:guest@127.0.0.1:1/"
    relay.start()
    customer = await create_customer(client, admin)
    for n in range(5):
        response = await client.put(f"/api/customers/{customer['id']}", json={"notes": f"n{n}"}, headers=admin)
        assert response.status_code == 200
    assert (await client.get("/ready")).status_code == 200
    await asyncio.sleep(0.5)
    status = await client.get("/api/events/status", headers=admin)
    assert status.status_code == 200
    figures = status.json()
    assert figures["backlog"] == 6
    assert figures["oldest_unpublished_age_seconds"] > 0
    assert figures["leader"] is True
    assert figures["broker"] == "rabbitmq"
    assert await db.fetchval("SELECT count(*) FROM events WHERE published_at IS NOT NULL") == 0

    # The broker comes back: the backlog goes out, in order.
    received = await broker.consume()
    await relay.stop()
    publisher.url = broker.url
    relay.start()
    bodies = await received.until(6)
    assert by_customer(bodies) == {customer["id"]: [1, 2, 3, 4, 5, 6]}
    await _published(db)
    figures = (await client.get("/api/events/status", headers=admin)).json()
    assert figures["backlog"] == 0
    assert figures["oldest_unpublished_age_seconds"] is None
    assert figures["last_published_at"] is not None
