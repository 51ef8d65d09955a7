"""The real RabbitMQ of this machine, per test: uniquely named exchange and queue, deleted afterwards."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aio_pika
import pytest

from crm.orders.consumer import dead_letter_names

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass
class Broker:
    url: str
    exchange: str
    queue: str
    channel: aio_pika.abc.AbstractChannel

    async def publish(self, event: dict[str, Any] | bytes, routing_key: str = "order.updated") -> None:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        exchange = await self.channel.get_exchange(self.exchange)
        message_id = event["id"] if isinstance(event, dict) else str(uuid.uuid4())
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                content_type="application/cloudevents+json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
        )

    async def dead_letters(self) -> list[bytes]:
        queue = await self.channel.declare_queue(dead_letter_names(self.queue), passive=True)
        bodies = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            bodies.append(message.body)
        return bodies

    async def queue_depth(self) -> int:
        queue = await self.channel.declare_queue(self.queue, passive=True)
        count = queue.declaration_result.message_count
        return int(count or 0)


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    name = f"test-orders-{uuid.uuid4().hex[:12]}"
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    await channel.declare_exchange(f"{name}.events", aio_pika.ExchangeType.TOPIC, durable=True)
    try:
        yield Broker(AMQP_URL, f"{name}.events", name, channel)
    finally:
        for queue in (name, dead_letter_names(name)):
            await channel.queue_delete(queue)
        for exchange in (f"{name}.events", dead_letter_names(name)):
            await channel.exchange_delete(exchange)
        await connection.close()


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def order_event(
    order: uuid.UUID,
    customer: uuid.UUID,
    version: int,
    status: str = "new",
    amount: str | float = "10.00",
    *,
    kind: str = "updated",
) -> dict[str, Any]:
    updated = T0 + timedelta(minutes=version)
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "order-service",
        "type": f"orders.order.{kind}",
        "subject": str(order),
        "time": updated.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {
            "version": version,
            "order": {
                "id": str(order),
                "customer_id": str(customer),
                "order_number": f"ORD-{order.int % 1_000_000:06d}",
                "status": status,
                "total_amount": amount,
                "created_at": T0.isoformat().replace("+00:00", "Z"),
                "updated_at": updated.isoformat().replace("+00:00", "Z"),
            },
        },
    }


def final_states(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each order's highest-version state, as the direct sum sees it."""
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        order = event["data"]["order"]
        if order["id"] not in latest or event["data"]["version"] > latest[order["id"]]["version"]:
            latest[order["id"]] = {
                **order,
                "version": event["data"]["version"],
                "deleted": event["type"] == "orders.order.deleted",
                "total_amount": Decimal(str(order["total_amount"])),
            }
    return list(latest.values())
