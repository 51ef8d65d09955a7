"""The RabbitMQ publisher on its own: the exchange it declares, and what it answers with no broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aio_pika
import pytest

from crm.events.publisher import NoBroker, Outgoing, RabbitPublisher
from tests.events.conftest import AMQP_URL


async def test_it_declares_a_durable_topic_exchange() -> None:
    name = f"test-crm-events-{uuid.uuid4().hex[:12]}"
    publisher = RabbitPublisher(AMQP_URL, name)
    await publisher.start()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await asyncio.wait_for(publisher.connected.wait(), 10)
        assert await publisher.publish([Outgoing(str(uuid.uuid4()), "customer.created", b"{}")]) == [True]
        # Redeclaring with other arguments is refused: it exists as a durable topic exchange.
        for kind, durable in ((aio_pika.ExchangeType.FANOUT, True), (aio_pika.ExchangeType.TOPIC, False)):
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
                await channel.declare_exchange(name, kind, durable=durable)
        channel = await connection.channel()
        await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    finally:
        await publisher.stop()
        with contextlib.suppress(Exception):
            channel = await connection.channel()
            await channel.exchange_delete(name)
        await connection.close()


async def test_with_the_broker_unreachable_nothing_is_confirmed_and_nothing_waits() -> None:
    publisher = RabbitPublisher("amqp://guest:guest@127.0.0.1:1/", "unused")
    await publisher.start()
    try:
        started = asyncio.get_running_loop().time()
        batch = [Outgoing(str(uuid.uuid4()), "customer.created", b"{}") for _ in range(3)]
        assert await publisher.publish(batch) == [False, False, False]
        assert asyncio.get_running_loop().time() - started < 0.5
    finally:
        await publisher.stop()


async def test_without_a_broker_every_event_counts_as_published() -> None:
    batch = [Outgoing(str(uuid.uuid4()), "customer.created", b"{}") for _ in range(2)]
    assert await NoBroker().publish(batch) == [True, True]
