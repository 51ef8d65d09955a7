"""The live consumer against the real RabbitMQ: the figures equal a direct sum over the final states."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from crm.config import Settings
from crm.orders.consumer import AfterCommit, OrderEventsConsumer
from tests.orders.projection.amqp import Broker, final_states, order_event
from tests.orders.projection.helpers import expected_figures, nonzero, sessionmaker_for, stored_figures


@asynccontextmanager
async def consuming(
    settings: Settings,
    database_url: str,
    broker: Broker,
    *,
    prefetch: int = 16,
    linger: float = 0.0,
    after_commit: AfterCommit | None = None,
) -> AsyncIterator[OrderEventsConsumer]:
    async with sessionmaker_for(settings, database_url) as maker:
        consumer = OrderEventsConsumer(
            maker,
            broker.url,
            exchange=broker.exchange,
            queue=broker.queue,
            prefetch=prefetch,
            linger=linger,
            after_commit=after_commit,
        )
        consumer.start()
        try:
            await asyncio.wait_for(consumer.connected.wait(), 10)
            yield consumer
        finally:
            await consumer.stop()


async def until(condition: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def history(rng: random.Random, customers: list[uuid.UUID], orders: int) -> list[dict[str, Any]]:
    events = []
    for _ in range(orders):
        order = uuid.uuid4()
        versions = rng.randint(1, 5)
        for version in range(1, versions + 1):
            status = rng.choice(["new", "processing", "shipped", "delivered", "cancelled", "returned"])
            amount: str | float = f"{rng.randrange(1, 100_000) / 100:.2f}"
            if rng.random() < 0.3:
                amount = float(amount)  # some deployments send numbers
            deleted = version == versions and rng.random() < 0.1
            events.append(
                order_event(
                    order, rng.choice(customers), version, status, amount, kind="deleted" if deleted else "updated"
                )
            )
    return events


async def test_duplicates_and_reordering_end_in_the_latest_versions(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    rng = random.Random(3)
    customers = [uuid.uuid4() for _ in range(4)]
    events = history(rng, customers, 30)
    sent = events + rng.sample(events, len(events) // 2)  # half of them twice
    rng.shuffle(sent)
    async with consuming(settings, database_url, broker) as consumer:
        for event in sent:
            await broker.publish(event, "order.deleted" if event["type"].endswith("deleted") else "order.updated")

        async def all_acknowledged() -> bool:
            return consumer.applied == len(sent)

        await until(all_acknowledged)
    assert consumer.dead_lettered == 0
    assert nonzero(await stored_figures(db)) == nonzero(expected_figures(final_states(events)))
    assert await broker.queue_depth() == 0


async def test_malformed_events_are_dead_lettered_and_do_not_block_the_queue(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    order, customer = uuid.uuid4(), uuid.uuid4()
    good = order_event(order, customer, 1, "delivered", "12.34")
    no_version = order_event(order, customer, 2)
    del no_version["data"]["version"]
    float_money_bad = order_event(order, customer, 3, amount="12,34")
    wrong_type = {**order_event(order, customer, 4), "type": "orders.order.exploded"}
    wrong_subject = {**order_event(order, customer, 5), "subject": str(uuid.uuid4())}
    bad: list[bytes] = [
        b"not json at all",
        b'{"specversion": "1.0"}',
        json.dumps(no_version).encode(),
        json.dumps(float_money_bad).encode(),
        json.dumps(wrong_type).encode(),
        json.dumps(wrong_subject).encode(),
        b"[" * 70_000,
    ]
    async with consuming(settings, database_url, broker, prefetch=1) as consumer:
        for body in bad:
            await broker.publish(body)
        await broker.publish(good)

        async def good_applied() -> bool:
            return consumer.applied == 1 and consumer.dead_lettered == len(bad)

        await until(good_applied)
    assert sorted(await broker.dead_letters()) == sorted(bad)
    assert await broker.queue_depth() == 0
    row = await db.fetchrow(
        "SELECT total_orders, total_spent FROM customer_order_figures WHERE customer_id = $1", customer
    )
    assert row is not None
    assert (row["total_orders"], str(row["total_spent"])) == (1, "12.34")


async def test_a_consumer_killed_between_commit_and_ack_gets_a_redelivery_that_changes_nothing(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    order, customer = uuid.uuid4(), uuid.uuid4()
    event = order_event(order, customer, 1, "shipped", "50.00")
    committed: list[str | None] = []
    killed = asyncio.Event()

    async def die(message: AbstractIncomingMessage) -> None:
        committed.append(message.message_id)
        killed.set()
        # The process dies here: never to acknowledge (the hook's task ends with the consumer).
        await asyncio.Event().wait()

    async with consuming(settings, database_url, broker, after_commit=die) as first:
        await broker.publish(event)
        await asyncio.wait_for(killed.wait(), 10)
    assert first.applied == 0
    assert committed == [event["id"]]
    before = await db.fetch("SELECT * FROM order_projections")
    figures = await db.fetch("SELECT * FROM customer_order_figures")

    async with consuming(settings, database_url, broker) as second:

        async def redelivered() -> bool:
            return second.applied == 1

        await until(redelivered)
    assert second.changed == 0
    assert await db.fetch("SELECT * FROM order_projections") == before
    assert await db.fetch("SELECT * FROM customer_order_figures") == figures


async def test_two_consumers_share_the_queue(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    rng = random.Random(5)
    customers = [uuid.uuid4() for _ in range(3)]
    events = history(rng, customers, 60)
    rng.shuffle(events)
    async with (
        consuming(settings, database_url, broker, prefetch=4) as one,
        consuming(settings, database_url, broker, prefetch=4) as two,
    ):
        for event in events:
            await broker.publish(event, "order.deleted" if event["type"].endswith("deleted") else "order.updated")

        async def all_acknowledged() -> bool:
            return one.applied + two.applied == len(events)

        await until(all_acknowledged)
    assert one.applied > 0
    assert two.applied > 0
    assert nonzero(await stored_figures(db)) == nonzero(expected_figures(final_states(events)))
