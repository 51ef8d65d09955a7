"""The live order events consumer: the Order Service's events into the projection.

Delivery contract kept here:
- the service's own durable queue (ORDER_EVENTS_QUEUE), bound to the durable topic exchange
  `orders.events` for `order.created|updated|deleted`; several instances consume it together
  (each takes at most ORDER_EVENTS_PREFETCH unacknowledged messages at a time);
- messages are applied a batch per transaction: whatever has arrived (up to ORDER_EVENTS_BATCH)
  is applied with one set of statements and one commit (crm.orders.projection.service), then
  acknowledged together; a message is acknowledged only after its transaction committed: a
  consumer that dies in between gets the batch redelivered (to itself or another instance),
  and applying it again changes nothing (the projection keeps each order's latest version);
  at a trickle a batch is one message (nothing waits for a batch to fill);
- a malformed message is logged and rejected without requeue at once (its batch-mates are
  applied as if it were not there): the queue's dead-letter exchange parks it in
  `<queue>.dead-letter` for a person to look at; it never comes back on its own;
- a database that does not answer is not the messages' fault: the batch goes back to the queue
  after a pause and is tried again;
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
from crm.orders.events import ROUTING_KEYS, MalformedEvent, OrderEvent, parse_event
from crm.orders.projection.service import OrderState, apply_batch

log = structlog.get_logger("crm.orders.events")

# Between a database failure and handing the message back: not a tight loop of redeliveries.
_RETRY_PAUSE = 1.0

AfterCommit = Callable[[AbstractIncomingMessage], Awaitable[None]]


def dead_letter_names(queue: str) -> str:
    """The dead-letter exchange and queue of a consumer queue (both have this name)."""
    return f"{queue}.dead-letter"


def _canceller(task: asyncio.Task[None]) -> Callable[..., None]:
    def cancel(*_: object) -> None:
        task.cancel()

    return cancel


class OrderEventsConsumer:
    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        url: str,
        *,
        exchange: str = "orders.events",
        queue: str = "crm.order-events",
        prefetch: int = 512,
        batch: int | None = None,
        linger: float = 0.0,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.maker = maker
        self.url = url
        self.exchange = exchange
        self.queue = queue
        # Unacknowledged messages the broker may hand this consumer. A batch is at most half of
        # them by default, so the next batch arrives while one is being applied.
        self.prefetch = prefetch
        self.batch = max(1, min(batch or prefetch // 2, prefetch))
        # How long a batch that is not full waits for more. None by default: at a trickle each
        # message is applied at once, under load the batch is whatever arrived meanwhile.
        self.linger = linger
        # For tests: runs between the commit and the acknowledgement of each message.
        self.after_commit = after_commit
        self.applied = 0
        self.changed = 0
        self.dead_lettered = 0
        self.batches = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._appliers: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(supervise("crm order events consumer", self.url, self._session))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for applier in list(self._appliers):
            applier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await applier

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
        # One buffer and one applier per channel: a lost channel's messages go back to the queue
        # (the broker's doing), and its applier ends with it.
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        applier = asyncio.create_task(self._apply_loop(inbox))
        self._appliers.add(applier)
        applier.add_done_callback(self._appliers.discard)
        channel.close_callbacks.add(_canceller(applier))
        await queue.consume(inbox.put)
        self.connected.set()

    async def _apply_loop(self, inbox: asyncio.Queue[AbstractIncomingMessage]) -> None:
        while True:
            batch = [await inbox.get()]
            deadline = asyncio.get_running_loop().time() + self.linger
            while len(batch) < self.batch:
                if not inbox.empty():
                    batch.append(inbox.get_nowait())
                    continue
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(inbox.get(), left))
                except TimeoutError:
                    break
            await self._apply(batch)

    async def _apply(self, messages: list[AbstractIncomingMessage]) -> None:
        good: list[tuple[AbstractIncomingMessage, OrderEvent, OrderState]] = []
        for message in messages:
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
                continue
            good.append((message, event, state))
        if not good:
            return
        try:
            self.changed += await apply_batch(self.maker, [state for _, _, state in good])
        except (DBAPIError, InterfaceError, OSError, TimeoutError) as exc:
            log.warning("order events not applied, will retry", events=len(good), error=type(exc).__name__)
            await asyncio.sleep(_RETRY_PAUSE)
            for message, _, _ in good:
                await message.nack(requeue=True)
            return
        except Exception:
            if len(good) > 1:
                # A bug of ours that one of them triggers: find it by applying them one at a time.
                for one in good:
                    await self._apply([one[0]])
                return
            log.exception("order event failed, dead-lettered", event_id=good[0][1].id)
            self.dead_lettered += 1
            await good[0][0].reject(requeue=False)
            return
        self.batches += 1
        if self.after_commit is not None:
            for message, _, _ in good:
                await self.after_commit(message)
        # One acknowledgement for the batch: `multiple` settles every delivery of this channel up
        # to the last one, and all earlier ones are settled already (this batch's, acknowledged
        # here or rejected above, and earlier batches', applied in order before it).
        await good[-1][0].ack(multiple=True)
        self.applied += len(good)
