"""Where the relay sends events: a small interface, RabbitMQ behind it, and "no broker".

A `Publisher` takes a batch of events in publication order and answers, for each, whether the
broker confirmed it. It never raises for a broker that is down or refuses: such events are
simply not confirmed, and the relay keeps them for the next try. NATS JetStream or Kafka would
be one more class with the same two methods.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from crm.broker import Backoff, supervise

log = structlog.get_logger("crm.events.publisher")

CONTENT_TYPE = "application/cloudevents+json"
# Seconds `stop` waits for the broker connection to close.
_STOP_WAIT = 2.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event as a broker message: its id (the message id), routing key and body (the envelope)."""

    id: str
    routing_key: str
    body: bytes


def routing_key(event_type: str) -> str:
    """`crm.customer.updated` -> `customer.updated`."""
    return event_type.removeprefix("crm.")


class Publisher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ready(self) -> bool:
        """Whether a publish now could be confirmed at all (connected)."""
        ...

    async def publish(self, batch: Sequence[Outgoing]) -> list[bool]:
        """Send every event of the batch (all in flight at once); True for each one the broker confirmed."""
        ...


class NoBroker:
    """EVENTS_AMQP_URL unset: nothing to send to, so every event counts as published at once.

    The relay then only moves events into the pull feed (published_at, feed_position), which
    keeps the feed, the status numbers and retention working without a broker.
    """

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def publish(self, batch: Sequence[Outgoing]) -> list[bool]:
        return [True] * len(batch)


class RabbitPublisher:
    """Publishes to a durable topic exchange with publisher confirms, over a supervised connection.

    The connection is kept by crm.broker.supervise (reconnects with back-off); while it is down,
    `publish` confirms nothing and returns at once. Messages are persistent, carry the event id
    as `message_id` and are not `mandatory`: an exchange without a bound queue is the consumers'
    business, not a failure to publish.
    """

    def __init__(
        self, url: str, exchange: str, *, timeout: float = 10.0, backoff: Callable[[], Backoff] | None = None
    ) -> None:
        self.url = url
        self.exchange_name = exchange
        self.timeout = timeout
        self.connected = asyncio.Event()
        self._backoff = backoff
        self._exchange: AbstractExchange | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        backoff = self._backoff() if self._backoff is not None else None
        self._task = asyncio.create_task(
            supervise("crm events relay", self.url, self._session, backoff=backoff), name="crm-events-publisher"
        )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # The supervisor says goodbye to the broker (shielded, up to 5 s); a slow broker
            # must not hold up the service's shutdown meanwhile: the goodbye finishes alone.
            done, _ = await asyncio.wait({task}, timeout=_STOP_WAIT)
            if done:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            else:
                log.warning("events publisher still closing its broker connection", seconds=_STOP_WAIT)
        self._lost()

    async def _session(self, connection: AbstractConnection, watch: Callable[[AbstractChannel], None]) -> None:
        channel = await connection.channel(publisher_confirms=True)
        watch(channel)
        channel.close_callbacks.add(lambda *_: self._lost())
        connection.close_callbacks.add(lambda *_: self._lost())
        self._exchange = await channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        self.connected.set()

    def ready(self) -> bool:
        return self._exchange is not None

    def _lost(self) -> None:
        self._exchange = None
        self.connected.clear()

    async def publish(self, batch: Sequence[Outgoing]) -> list[bool]:
        exchange = self._exchange
        if exchange is None or not batch:
            return [False] * len(batch)

        async def one(event: Outgoing) -> None:
            message = aio_pika.Message(
                event.body,
                message_id=event.id,
                content_type=CONTENT_TYPE,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, routing_key=event.routing_key, mandatory=False)

        # Every message in flight at once, one wait for all their confirms.
        tasks = [asyncio.ensure_future(one(event)) for event in batch]
        done, pending = await asyncio.wait(tasks, timeout=self.timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        confirmed = [task in done and not task.cancelled() and task.exception() is None for task in tasks]
        if not all(confirmed):
            failures = [task.exception() for task in done if not task.cancelled() and task.exception() is not None]
            log.warning(
                "events not confirmed by the broker",
                unconfirmed=confirmed.count(False),
                of=len(batch),
                timed_out=len(pending),
                error=f"{type(failures[0]).__name__}: {failures[0]}" if failures else None,
            )
        return confirmed
