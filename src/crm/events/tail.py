"""`crm events tail`: each event as it reaches the exchange, one line each, for a person to watch.

A temporary queue (exclusive, deleted when the command stops) bound to the exchange: it sees
what is published from now on, and takes nothing from any other consumer's queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage


def line(message: AbstractIncomingMessage) -> str:
    """`<time> <type> customer=<id> sequence=<n> subject=<id>` (or what the message is, when not an event)."""
    try:
        event = json.loads(message.body)
        return (
            f"{event['time']}  {event['type']:<26} customer={event['customerid']}  "
            f"sequence={event['sequence']:<4} subject={event['subject']}"
        )
    except (ValueError, KeyError, TypeError):
        return f"(not a CRM event) routing key {message.routing_key}, {len(message.body)} bytes"


async def tail(
    url: str,
    exchange: str,
    *,
    key: str = "#",
    count: int | None = None,
    out: Callable[[str], None] = print,
    ready: asyncio.Event | None = None,
) -> int:
    """Print events until cancelled (or `count` arrived); how many were printed."""
    printed = 0
    done = asyncio.Event()
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        # Declared as the relay declares it, so tail can start before the service does.
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(target, key)

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal printed
            if count is not None and printed >= count:
                return
            out(line(message))
            printed += 1
            if count is not None and printed >= count:
                done.set()

        await queue.consume(on_message, no_ack=True)
        if ready is not None:
            ready.set()
        await done.wait()
    finally:
        await connection.close()
    return printed
