"""Nothing lost: a relay killed between the publish and the mark, a leader that dies, a broker that nacks.

The app's own relay is off here: each test runs its relays by hand on the test's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx
import pytest

from crm.config import Settings
from crm.events.relay import LOCK_CLASS, LOCK_RELAY, Relay, confirmed_prefixes
from tests.events.conftest import Broker, by_customer
from tests.helpers import create_customer


@pytest.fixture
def relay_enabled() -> bool:
    return False


async def _write(client: httpx.AsyncClient, headers: dict[str, str], customer: dict[str, Any], n: int) -> None:
    response = await client.put(f"/api/customers/{customer['id']}", json={"notes": f"n{n}"}, headers=headers)
    assert response.status_code == 200, response.text


async def _all_published(db: asyncpg.Connection[Any], within: float = 20.0) -> int:
    deadline = asyncio.get_running_loop().time() + within
    while await db.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL"):
        assert asyncio.get_running_loop().time() < deadline, "events left unpublished"
        await asyncio.sleep(0.05)
    total: int = await db.fetchval("SELECT count(*) FROM events")
    return total


async def _counts(db: asyncpg.Connection[Any]) -> dict[str, list[int]]:
    rows = await db.fetch("SELECT customer_id, last FROM event_sequences")
    return {str(r["customer_id"]): list(range(1, r["last"] + 1)) for r in rows}


async def test_a_relay_killed_between_publish_and_mark_leaves_its_batch_to_be_sent_again(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection[Any],
    broker: Broker,
    settings: Settings,
    database_url: str,
) -> None:
    received = await broker.consume()
    customers = [await create_customer(client, admin) for _ in range(3)]
    for n in range(4):
        for customer in customers:
            await _write(client, admin, customer, n)
    total = await db.fetchval("SELECT count(*) FROM events")
    assert total == 15

    async def die(rows: Sequence[asyncpg.Record]) -> None:
        # The process dies right after the broker confirmed the batch, before the mark.
        assert len(rows) == total
        raise asyncio.CancelledError

    first = Relay(settings, database_url, after_publish=die, publish_metrics=False)
    first.start()
    assert first.task is not None
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(first.task, 15)
    await received.until(total)
    await first.stop()
    # Confirmed by the broker, but never marked: still waiting in the outbox.
    assert await db.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL") == total

    second = Relay(settings, database_url, publish_metrics=False)
    second.start()
    try:
        assert await _all_published(db) == total
        deadline = asyncio.get_running_loop().time() + 10
        while len(received.messages) < 2 * total:
            assert asyncio.get_running_loop().time() < deadline, len(received.messages)
            await asyncio.sleep(0.02)
    finally:
        await second.stop()
    # Every event twice (at least once), and a consumer dropping repeats by id sees each
    # customer's events in order.
    ids = [m.message_id for m in received.messages]
    assert len(ids) == 2 * total
    assert len(set(ids)) == total
    assert by_customer(received.bodies) == await _counts(db)


async def _leader_backend(db: asyncpg.Connection[Any]) -> int | None:
    pid: int | None = await db.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        LOCK_CLASS,
        LOCK_RELAY,
    )
    return pid


@pytest.mark.parametrize("death", ["process", "connection"])
async def test_when_the_leader_dies_the_other_takes_over_within_seconds_and_never_both_publish(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection[Any],
    broker: Broker,
    settings: Settings,
    database_url: str,
    death: str,
) -> None:
    received = await broker.consume()
    customers = [await create_customer(client, admin) for _ in range(3)]
    first = Relay(settings, database_url, publish_metrics=False)
    second = Relay(settings, database_url, publish_metrics=False)
    first.start()
    await asyncio.wait_for(first.became_leader.wait(), 10)
    second.start()
    both = 0
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        nonlocal both
        while not stop_sampling.is_set():
            both += first.leading and second.leading
            await asyncio.sleep(0.002)

    async def writes(rounds: int) -> None:
        for n in range(rounds):
            for customer in customers:
                await _write(client, admin, customer, n)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        await writes(10)
        await asyncio.sleep(2.5)  # the second has tried for the lock at least once meanwhile
        assert first.leading
        assert not second.leading
        assert first.published > 0
        assert second.published == 0

        writing = asyncio.create_task(writes(20))
        await asyncio.sleep(0.1)
        killed_at = asyncio.get_running_loop().time()
        if death == "process":
            await first.stop()
        else:
            # The leader's database connection is cut: the lock goes with it.
            pid = await _leader_backend(db)
            assert pid is not None
            assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
        await asyncio.wait_for(_someone_leads_again(first, second, death), 10)
        took = asyncio.get_running_loop().time() - killed_at
        assert took < 5, took
        await writing
        total = await _all_published(db)
        await received.until(total)
    finally:
        stop_sampling.set()
        await sampler
        await first.stop()
        await second.stop()
    assert both == 0
    if death == "process":
        assert second.published > 0
    assert by_customer(received.bodies) == await _counts(db)


async def _someone_leads_again(first: Relay, second: Relay, death: str) -> None:
    if death == "process":
        await second.became_leader.wait()
        return
    # The cut leader notices at its next statement and follows again; either may win the lock.
    stepped_down = False
    while True:
        stepped_down = stepped_down or not first.leading
        if stepped_down and (first.leading or second.leading):
            return
        await asyncio.sleep(0.005)


async def test_events_the_broker_refuses_wait_and_hold_back_that_customers_later_ones(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection[Any],
    broker: Broker,
    settings: Settings,
    database_url: str,
) -> None:
    # A queue that refuses messages past 3 (RabbitMQ nacks them to the publisher).
    name = f"{broker.exchange}.full"
    broker.queues.append(name)
    queue = await broker.channel.declare_queue(
        name, durable=True, arguments={"x-max-length": 3, "x-overflow": "reject-publish"}
    )
    await queue.bind(broker.exchange, "#")
    customer = await create_customer(client, admin)
    for n in range(5):
        await _write(client, admin, customer, n)

    relay = Relay(settings, database_url, publish_metrics=False)
    relay.start()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while relay.published < 3:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # retries meanwhile are refused too
        published = await db.fetch("SELECT sequence FROM events WHERE published_at IS NOT NULL ORDER BY sequence")
        assert [r["sequence"] for r in published] == [1, 2, 3]

        bodies = []
        while (message := await queue.get(fail=False, no_ack=True, timeout=5)) is not None:
            bodies.append(message.body)
        assert len(bodies) == 3
        total = await _all_published(db)
        assert total == 6
    finally:
        await relay.stop()
    published = await db.fetch("SELECT sequence FROM events ORDER BY feed_position")
    assert [r["sequence"] for r in published] == [1, 2, 3, 4, 5, 6]


def test_only_each_customers_events_before_its_first_unconfirmed_one_are_marked() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    rows = [
        {"position": 1, "customer_id": a},
        {"position": 2, "customer_id": b},
        {"position": 3, "customer_id": a},  # refused
        {"position": 4, "customer_id": b},
        {"position": 5, "customer_id": a},  # confirmed, but after a's refused one
        {"position": 6, "customer_id": b},  # refused
        {"position": 7, "customer_id": b},
    ]
    confirmed = [True, True, False, True, True, False, True]
    assert confirmed_prefixes(rows, confirmed) == [1, 2, 4]  # type: ignore[arg-type]
