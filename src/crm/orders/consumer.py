"""The live order events consumer: the Order Service's events into the projection.

Delivery contract kept here:
- the service's own durable queue (ORDER_EVENTS_QUEUE), bound to the durable topic exchange
  `orders.events` for `order.created|updated|deleted`; several instances consume it together
  (each takes at most ORDER_EVENTS_PREFETCH unacknowledged messages at a time);
- a message is acknowledged only after its transaction committed: a consumer that dies in
  between gets it redelivered (to itself or another instance), and applying it again changes
  nothing (the projection keeps each order's latest version);
- a malformed message is logged and rejected without requeue: the queue's dead-letter exchange
  parks it in `<queue>.dead-letter` for a person to look at; it never comes back on its own;
- a database that does not answer is not the message's fault: it goes back to the queue after
  a pause and is tried again;
- the connection is kept by crm.broker.supervise (reconnects with back-off).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.broker import supervise
from crm.orders.events import ROUTING_KEYS, MalformedEvent, parse_event
from crm.orders.projection.service import apply

log = structlog.get_logger("crm.orders.events")

# Between a database failure and handing the message back: not a tight loop of redeliveries.
_RETRY_PAUSE = 1.0

AfterCommit = Callable[[AbstractIncomingMessage], Awaitable[None]]


def dead_letter_names(queue: str) -> str:
    """The dead-letter exchange and queue of a consumer queue (both have this name)."""
    return f"{queue}.dead-letter"


class OrderEventsConsumer:
    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        url: str,
        *,
        exchange: str = "orders.events",
        queue: str = "crm.order-events",
        prefetch: int = 32,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.maker = maker
        self.url = url
        self.exchange = exchange
        self.queue = queue
        self.prefetch = prefetch
        # For tests: runs between the commit and the acknowledgement.
        self.after_commit = after_commit
        self.applied = 0
        self.changed = 0
        self.dead_lettered = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(supervise("crm order events consumer", self.url, self._session))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _session(self, connection: AbstractConnection, watch: Callable[[AbstractChannel], None]) -> None:
        self.connected.clear()
        channel = await connection.channel()
        watch(channel)
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        dead = dead_letter_names(self.queue)
        dead_exchange = await channel.declare_exchange(dead, aio_pika.ExchangeType.FANOUT, durable=True)
        dead_queue = await channel.declare_queue(dead, durable=True)
        await dead_queue.bind(dead_exchange)
        queue = await channel.declare_queue(self.queue, durable=True, arguments={"x-dead-letter-exchange": dead})
        for key in ROUTING_KEYS:
            await queue.bind(exchange, key)
        await queue.consume(self._on_message)
        self.connected.set()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event, state = parse_event(message.body)
        except MalformedEvent as exc:
            log.warning(
                "malformed order event dead-lettered",
                message_id=message.message_id,
                routing_key=message.routing_key,
                reason=str(exc),
            )
            self.dead_lettered += 1
            await message.reject(requeue=False)
            return
        try:
            self.changed += await apply(self.maker, [state])
        except (DBAPIError, InterfaceError, OSError, TimeoutError) as exc:
            log.warning("order event not applied, will retry", event_id=event.id, error=type(exc).__name__)
            await asyncio.sleep(_RETRY_PAUSE)
            await message.nack(requeue=True)
            return
        except Exception:
            # A bug of ours: requeueing would spin on it forever; park it with the malformed ones.
            log.exception("order event failed, dead-lettered", event_id=event.id)
            self.dead_lettered += 1
            await message.reject(requeue=False)
            return
        if self.after_commit is not None:
            await self.after_commit(message)
        await message.ack()
        self.applied += 1
