"""Order: one customer's events reach one subscription in `sequence` order, and only that queue waits."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.responses import Response

from crm.config import Settings
from crm.main import create_app
from crm.webhooks import queries
from crm.webhooks.dispatcher import Dispatcher
from tests.helpers import create_customer
from tests.webhooks.conftest import webhook_settings
from tests.webhooks.receiver import Receiver, Seen, ok, slow
from tests.webhooks.test_subscriptions import subscribe


async def test_a_failing_delivery_holds_back_only_its_customers_later_events_for_its_subscription(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, second_receiver: Receiver
) -> None:
    released = threading.Event()

    async def fail_the_stuck_customer(seen: Seen) -> Response:
        if seen.event["data"]["customer"]["first_name"] == "Stuck" and not released.is_set():
            return Response("down", status_code=500)
        return await ok(seen)

    receiver.behaviour = fail_the_stuck_customer
    await subscribe(client, admin, receiver.url, "crm.customer.*")
    await subscribe(client, admin, second_receiver.url, "crm.customer.*")

    customer = await create_customer(client, admin, first_name="Stuck")
    for city in ("Lviv", "Dnipro"):
        response = await client.put(f"/api/customers/{customer['id']}", json={"city": city}, headers=admin)
        assert response.status_code == 200
    other = await create_customer(client, admin, first_name="Other")
    await client.put(f"/api/customers/{other['id']}", json={"city": "Kharkiv"}, headers=admin)

    def of(customer_id: str) -> Any:
        return lambda s: s.event["customerid"] == customer_id

    # The other subscription has all of the stuck customer's, in order; the other customer
    # is delivered to the failing subscription meanwhile.
    got = await second_receiver.wait_for(3, where=of(customer["id"]))
    assert [s.event["sequence"] for s in got] == ["1", "2", "3"]
    others = await receiver.wait_for(2, where=of(other["id"]))
    assert [s.event["sequence"] for s in others] == ["1", "2"]
    attempts = await receiver.wait_for(2, where=of(customer["id"]))  # the head, failing, tried again
    assert {s.event["sequence"] for s in attempts} == {"1"}, "a later event overtook the failing head"

    released.set()
    await receiver.wait_for(2, where=lambda s: of(customer["id"])(s) and s.event["sequence"] != "1")
    sequences = [s.event["sequence"] for s in receiver.seen() if of(customer["id"])(s)]
    # The head until it succeeded (the first attempt after the release), then the two it held back.
    assert sequences[-2:] == ["2", "3"]
    assert set(sequences[:-2]) == {"1"}
    assert len(sequences) >= 4


async def test_two_dispatchers_on_one_database_keep_each_customers_order(
    app: Starlette,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    settings: Settings,
    db: asyncpg.Connection[Any],
) -> None:
    """A second instance's dispatcher shares the work (SKIP LOCKED leases) without reordering a queue."""
    receiver.behaviour = slow(0.05)
    second = Dispatcher(app.state.sessionmaker, settings)
    second.start()
    try:
        await subscribe(client, admin, receiver.url, "crm.customer.*")
        customers = [await create_customer(client, admin) for _ in range(4)]

        async def edits(customer: dict[str, Any]) -> None:
            for i in range(8):
                response = await client.put(
                    f"/api/customers/{customer['id']}", json={"city": f"City {i}"}, headers=admin
                )
                assert response.status_code == 200, response.text

        await asyncio.gather(*(edits(c) for c in customers))
        seen = await receiver.wait_for(4 * 9, within=30)
        deadline = asyncio.get_running_loop().time() + 10
        while await db.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'") < 36:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    finally:
        await second.stop()
    by_customer: dict[str, list[int]] = defaultdict(list)
    previous: dict[str, Seen] = {}
    for s in seen:
        customer_id = s.event["customerid"]
        by_customer[customer_id].append(int(s.event["sequence"]))
        if customer_id in previous:
            # Sent only once the one before it was answered: never two of a queue in flight.
            assert s.at >= receiver.answered[previous[customer_id].headers["webhook-id"]]
        previous[customer_id] = s
    for customer in customers:
        # Each once, in order: neither instance sent one the other had, nor overtook a queue's head.
        assert by_customer[customer["id"]] == list(range(1, 10))
    assert await db.fetchval("SELECT max(attempts) FROM webhook_deliveries") == 1


async def test_a_delivery_claimed_by_an_instance_that_died_is_sent_after_its_lease(
    tmp_path: Path, database_url: str, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    app = create_app(webhook_settings(tmp_path, webhook_dispatcher_enabled=False), database_url=database_url)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        await subscribe(client, admin, receiver.url, "crm.customer.*")
        await create_customer(client, admin)
        # The instance that died: it claimed the delivery (leased it) and never wrote an outcome.
        async with app.state.sessionmaker() as session, session.begin():
            (claimed,) = await queries.claim(session, 10, 60)
        living = Dispatcher(app.state.sessionmaker, app.state.settings)
        living.start()
        try:
            await asyncio.sleep(0.5)
            assert receiver.seen() == [], "sent while another instance held it"
            await db.execute("UPDATE webhook_deliveries SET lease_until = now() - interval '1 second'")
            (seen,) = await receiver.wait_for(1)
            assert seen.headers["webhook-id"] == str(claimed["event_id"])
        finally:
            await living.stop()


async def test_a_delivery_written_while_its_head_finishes_is_handed_over(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    """The head's end waits for a writer of its customer: the delivery behind it is scheduled, not stranded."""
    receiver.behaviour = slow(1.5)
    await subscribe(client, admin, receiver.url, "crm.customer.*")
    customer = await create_customer(client, admin)
    await receiver.wait_for(1)  # the head is in flight
    # A writer of the same customer, as crm.events.outbox writes: the sequence row, then its event.
    writer = db.transaction()
    await writer.start()
    await db.execute("UPDATE event_sequences SET last = last + 1 WHERE customer_id = $1", customer["id"])
    await db.execute(
        "INSERT INTO events (id, type, customer_id, subject, sequence, data)"
        " VALUES (gen_random_uuid(), 'crm.customer.updated', $1, $1, 2, $2)",
        customer["id"],
        json.dumps({"customer": {"id": customer["id"]}, "changes": {}}),
    )
    await asyncio.sleep(2.5)  # the head was answered meanwhile; its end waits for this writer
    assert len(receiver.seen()) == 1
    await writer.commit()
    second = (await receiver.wait_for(2))[1]
    assert second.event["sequence"] == "2"
