from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection
from yarl import URL

log = structlog.get_logger("crm.broker")

# What a job does with a fresh connection: open its channels and consumers, then return.
# It gets `watch` to register each channel whose loss must restart the connection.
Session = Callable[[AbstractConnection, Callable[[AbstractChannel], None]], Awaitable[None]]

# A connection that lived this long was healthy: the next failure starts the back-off afresh.
_HEALTHY_AFTER = 30.0
# Without traffic, a broker that vanished (a cut network, a paused VM) is noticed after about
# three missed heartbeats; the AMQP default (60 s) would leave the job deaf for minutes.
_HEARTBEAT = 10


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    _next: float = field(default=0.0, init=False)

    def delay(self) -> float:
        """The next wait: doubling from `initial` up to `maximum`, each drawn from its upper half."""
        self._next = self.initial if self._next == 0 else min(self.maximum, self._next * self.factor)
        return self._next * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self._next = 0.0


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else str(parsed)


async def supervise(name: str, url: str, session: Session, *, backoff: Backoff | None = None) -> None:
    """Run `session` on a connection to `url` until cancelled, reconnecting whenever it is lost."""
    backoff = backoff or Backoff()
    target = URL(url)
    if "heartbeat" not in target.query:
        target = target.update_query(heartbeat=_HEARTBEAT)
    while True:
        started = time.monotonic()
        try:
            await _one_connection(name, target, session)
            log.warning("broker connection lost", job=name, url=safe_url(url))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the broker or the setup: start over
            log.warning("broker connection failed", job=name, url=safe_url(url), error=f"{type(exc).__name__}: {exc}")
        if time.monotonic() - started > _HEALTHY_AFTER:
            backoff.reset()
        await asyncio.sleep(backoff.delay())


async def _one_connection(name: str, target: URL, session: Session) -> None:
    """Connect, set the job up, and return when the connection or a watched channel is lost."""
    lost = asyncio.Event()
    on_close = _setter(lost)

    def watch(channel: AbstractChannel) -> None:
        channel.close_callbacks.add(on_close)

    connection = await aio_pika.connect(target, timeout=10, client_properties={"connection_name": name})
    try:
        connection.close_callbacks.add(on_close)
        await session(connection, watch)
        log.info("broker connected", job=name, url=safe_url(str(target)))
        await lost.wait()
    finally:
        if not connection.is_closed:
            # Shielded: a cancelled job still says goodbye to the broker (its unacknowledged
            # messages go back to the queue at once instead of after the heartbeat timeout).
            await asyncio.shield(_close(connection))


def _setter(event: asyncio.Event) -> Callable[..., None]:
    def set_event(*_: Any) -> None:
        event.set()

    return set_event


async def _close(connection: AbstractConnection) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout=5)
    except Exception as exc:  # noqa: BLE001 - closing a broken connection may fail any way
        log.debug("broker connection close failed", error=type(exc).__name__)
