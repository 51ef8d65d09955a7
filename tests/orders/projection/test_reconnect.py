"""The broker going away: the consumer reconnects with back-off and catches up.

RabbitMQ itself stays up (other tests share it); the consumer reaches it through a real TCP
relay that this test cuts and refuses, which is what the consumer sees of a broker that went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import asyncpg

from crm.config import Settings
from crm.orders.consumer import OrderEventsConsumer
from tests.orders.projection.amqp import Broker, order_event
from tests.orders.projection.helpers import sessionmaker_for


class Relay:
    def __init__(self) -> None:
        self.refusing = False
        self.accepted = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


async def test_the_consumer_reconnects_and_catches_up(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    relay = Relay()
    port = await relay.start()
    customer = uuid.uuid4()
    async with sessionmaker_for(settings, database_url) as maker:
        consumer = OrderEventsConsumer(
            maker, f"amqp://guest:guest@127.0.0.1:{port}/", exchange=broker.exchange, queue=broker.queue
        )
        consumer.start()
        try:
            await asyncio.wait_for(consumer.connected.wait(), 10)
            await broker.publish(order_event(uuid.uuid4(), customer, 1, "new", "1.00"))
            await _until_applied(consumer, 1)

            # The broker goes away and stays away for a while: the consumer keeps trying.
            relay.refusing = True
            relay.cut()
            await asyncio.sleep(2)
            assert relay.accepted == 1
            for _ in range(3):
                await broker.publish(order_event(uuid.uuid4(), customer, 1, "new", "1.00"))
            relay.refusing = False
            await _until_applied(consumer, 4, within=30)
            assert relay.accepted == 2
        finally:
            await consumer.stop()
            await relay.stop()
    row = await db.fetchrow("SELECT total_orders FROM customer_order_figures WHERE customer_id = $1", customer)
    assert row is not None
    assert row["total_orders"] == 4


async def _until_applied(consumer: OrderEventsConsumer, count: int, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while consumer.applied < count:
        assert asyncio.get_running_loop().time() < deadline, f"{consumer.applied} of {count} applied in time"
        await asyncio.sleep(0.05)
