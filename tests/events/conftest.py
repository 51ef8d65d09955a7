"""The events tests' broker: the machine's RabbitMQ, an exchange (and queues) of each test's own."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from crm.config import Settings
from tests.conftest import TEST_JWT_SECRET

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass
class Received:
    messages: list[AbstractIncomingMessage] = field(default_factory=list)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.messages]

    async def until(self, count: int, within: float = 15.0) -> list[dict[str, Any]]:
        """Wait until `count` distinct event ids arrived; every body received (repeats included)."""
        deadline = asyncio.get_running_loop().time() + within
        while len({m.message_id for m in self.messages}) < count:
            got = len({m.message_id for m in self.messages})
            assert asyncio.get_running_loop().time() < deadline, f"{got} of {count} events arrived in time"
            await asyncio.sleep(0.02)
        return self.bodies


@dataclass
class Broker:
    url: str
    exchange: str
    connection: AbstractConnection
    channel: AbstractChannel
    queues: list[str] = field(default_factory=list)

    async def consume(self) -> Received:
        """A queue bound to every event of the exchange, consumed into a list as messages arrive."""
        received = Received()
        queue = await self._queue()

        async def on_message(message: AbstractIncomingMessage) -> None:
            received.messages.append(message)
            await message.ack()

        await queue.consume(on_message)
        return received

    async def durable_queue(self) -> str:
        """A durable queue bound to every event (it keeps what arrives while RabbitMQ restarts)."""
        return (await self._queue()).name

    async def drain(self, name: str) -> list[AbstractIncomingMessage]:
        """Everything in a durable queue, on a fresh connection (the fixture's may have been cut)."""
        connection = await aio_pika.connect(self.url)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            messages = []
            while (message := await queue.get(fail=False, no_ack=True, timeout=5)) is not None:
                messages.append(message)
            return messages
        finally:
            await connection.close()

    async def _queue(self) -> AbstractQueue:
        name = f"{self.exchange}.q{len(self.queues)}"
        self.queues.append(name)
        queue = await self.channel.declare_queue(name, durable=True)
        await queue.bind(self.exchange, "#")
        return queue


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    name = f"test-crm-events-{uuid.uuid4().hex[:12]}"
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    broker = Broker(AMQP_URL, name, connection, channel)
    try:
        yield broker
    finally:
        # A fresh connection: the test may have restarted RabbitMQ under the fixture's.
        cleanup = await aio_pika.connect(AMQP_URL)
        try:
            channel = await cleanup.channel()
            for queue in broker.queues:
                await channel.queue_delete(queue)
            await channel.exchange_delete(name)
        finally:
            await cleanup.close()
            if not connection.is_closed:
                await connection.close()


@pytest.fixture
def relay_enabled() -> bool:
    """Whether the test's app runs its own relay; tests that run relays by hand turn it off."""
    return True


@pytest.fixture
def settings(tmp_path: Path, broker: Broker, relay_enabled: bool) -> Settings:
    return Settings(
        jwt_secret=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_path,
        log_format="json",
        db_pool_size=20,
        db_max_overflow=10,
        rate_limit_per_minute=0,
        events_amqp_url=AMQP_URL,
        events_exchange=broker.exchange,
        events_relay_enabled=relay_enabled,
        events_relay_poll_interval=0.02,
    )


def by_customer(bodies: Iterable[dict[str, Any]]) -> dict[str, list[int]]:
    """Each customer's sequence numbers in the order a consumer that drops repeated ids applies them."""
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for body in bodies:
        if body["id"] in seen:
            continue
        seen.add(body["id"])
        order.setdefault(body["customerid"], []).append(int(body["sequence"]))
    return order


def applied(bodies: Iterable[dict[str, Any]]) -> dict[str, list[int]]:
    """What a consumer applies that takes a customer's event n only right after n-1.

    Repeats (n at or below the last applied) are dropped; an event past a gap is skipped too,
    since the relay sends it again after the missing one.
    """
    last: dict[str, int] = {}
    order: dict[str, list[int]] = {}
    for body in bodies:
        customer, n = body["customerid"], int(body["sequence"])
        if n == last.get(customer, 0) + 1:
            last[customer] = n
            order.setdefault(customer, []).append(n)
    return order
