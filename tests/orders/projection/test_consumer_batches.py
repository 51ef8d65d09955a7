"""The consumer applies several messages per transaction (one commit, then each acknowledged),
against the real RabbitMQ: duplicates and reordering inside batches, a consumer killed between a
batch's commit and its acknowledgements, malformed messages among good ones."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from crm.config import Settings
from crm.orders.consumer import AfterCommit, OrderEventsConsumer
from tests.orders.projection.amqp import Broker, final_states, order_event
from tests.orders.projection.helpers import expected_figures, nonzero, stored_figures
from tests.orders.projection.test_consumer import consuming as consumer_running
from tests.orders.projection.test_consumer import history, until


@asynccontextmanager
async def consuming(
    settings: Settings,
    database_url: str,
    broker: Broker,
    *,
    prefetch: int = 64,
    linger: float = 0.3,
    after_commit: AfterCommit | None = None,
) -> AsyncIterator[OrderEventsConsumer]:
    """test_consumer's consumer with batch-sized defaults: a linger, so that messages published
    before it starts land in few batches."""
    async with consumer_running(
        settings, database_url, broker, prefetch=prefetch, linger=linger, after_commit=after_commit
    ) as consumer:
        yield consumer


async def declare(settings: Settings, database_url: str, broker: Broker) -> None:
    """Declare the queue (a consumer that stops at once), so messages published next wait in it."""
    async with consuming(settings, database_url, broker):
        pass


def routing(event: dict[str, Any]) -> str:
    return "order.deleted" if event["type"].endswith("deleted") else "order.updated"


async def test_duplicates_and_reordering_inside_batches(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    rng = random.Random(21)
    customers = [uuid.uuid4() for _ in range(5)]
    events = history(rng, customers, 60)
    # Every event twice, some three times, in any order: duplicates share batches and straddle them.
    sent = events * 2 + rng.sample(events, len(events) // 3)
    rng.shuffle(sent)
    await declare(settings, database_url, broker)
    for event in sent:
        await broker.publish(event, routing(event))
    async with consuming(settings, database_url, broker) as consumer:

        async def all_acknowledged() -> bool:
            return consumer.applied == len(sent)

        await until(all_acknowledged)
    assert consumer.dead_lettered == 0
    assert consumer.batches <= len(sent) // 10  # tens of messages per transaction
    assert consumer.changed <= len({e["data"]["order"]["id"] for e in events}) * 5
    assert nonzero(await stored_figures(db)) == nonzero(expected_figures(final_states(events)))
    assert await broker.queue_depth() == 0


async def test_a_batch_killed_between_commit_and_ack_is_redelivered_and_changes_nothing(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    customer = uuid.uuid4()
    # One state of its own order each: `changed` counts exactly the messages that changed something.
    events = [order_event(uuid.uuid4(), customer, 1, "delivered", f"{i}.25") for i in range(1, 31)]
    await declare(settings, database_url, broker)
    for event in events:
        await broker.publish(event)
    killed = asyncio.Event()

    async def die(message: AbstractIncomingMessage) -> None:
        killed.set()
        # The process dies here, after the commit, before the first acknowledgement.
        await asyncio.Event().wait()

    async with consuming(settings, database_url, broker, after_commit=die) as first:
        await asyncio.wait_for(killed.wait(), 10)
    assert first.applied == 0
    assert first.changed > 1  # a batch of several committed
    committed = first.changed
    projections = await db.fetch("SELECT * FROM order_projections ORDER BY order_id")
    assert len(projections) == committed

    async with consuming(settings, database_url, broker) as second:

        async def all_acknowledged() -> bool:
            return second.applied == len(events)

        await until(all_acknowledged)
    # The committed batch came back and changed nothing; the rest changed once each.
    assert second.changed == len(events) - committed
    after = {r["order_id"]: r for r in await db.fetch("SELECT * FROM order_projections")}
    assert all(after[r["order_id"]] == r for r in projections)
    assert nonzero(await stored_figures(db)) == nonzero(expected_figures(final_states(events)))
    total = sum(range(1, 31)) + 30 * 0.25
    row = await db.fetchrow(
        "SELECT total_orders, total_spent FROM customer_order_figures WHERE customer_id = $1", customer
    )
    assert row is not None
    assert (row["total_orders"], float(row["total_spent"])) == (30, total)
    assert await broker.queue_depth() == 0


async def test_malformed_messages_in_a_batch_are_dead_lettered_and_the_rest_applied_together(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    customer = uuid.uuid4()
    good = [order_event(uuid.uuid4(), customer, 1, "shipped", f"{i}.00") for i in range(1, 6)]
    no_version = order_event(uuid.uuid4(), customer, 1)
    del no_version["data"]["version"]
    bad = [b"{not json", json.dumps(no_version).encode(), json.dumps({**good[0], "type": "orders.order.lost"}).encode()]
    await declare(settings, database_url, broker)
    # Interleaved: good, bad, good, bad, good, bad, good, good.
    for i, event in enumerate(good):
        await broker.publish(event)
        if i < len(bad):
            await broker.publish(bad[i])
    async with consuming(settings, database_url, broker) as consumer:

        async def settled() -> bool:
            return consumer.applied == len(good) and consumer.dead_lettered == len(bad)

        await until(settled)
    assert consumer.batches == 1  # the good ones in one transaction, not held back by the bad
    assert sorted(await broker.dead_letters()) == sorted(bad)
    assert await broker.queue_depth() == 0
    row = await db.fetchrow(
        "SELECT total_orders, total_spent FROM customer_order_figures WHERE customer_id = $1", customer
    )
    assert row is not None
    assert (row["total_orders"], str(row["total_spent"])) == (5, "15.00")


async def test_a_trickle_is_applied_message_by_message_without_waiting(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    """The default consumer (no linger) applies a lone message at once."""
    customer = uuid.uuid4()
    async with consuming(settings, database_url, broker, linger=0.0) as consumer:
        for i in range(3):
            await broker.publish(order_event(uuid.uuid4(), customer, 1, "new", "1.00"))
            started = asyncio.get_running_loop().time()

            async def applied(count: int = i + 1) -> bool:
                return consumer.applied == count

            await until(applied, within=5)
            assert asyncio.get_running_loop().time() - started < 2
    assert consumer.batches == 3
    assert nonzero(await stored_figures(db)) == {customer: (3, Decimal("3.00"))}
