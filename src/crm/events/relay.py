"""The relay: the outbox's events to the broker, once each at least, one customer's in order.

Leadership. Every process of every instance runs a relay; one leads, the others wait. The
leader holds a session advisory lock (pg_try_advisory_lock) on a connection of its own, and
runs every statement of the relay on that same connection: a leader whose connection dies
loses the lock with it, and cannot mark anything afterwards, since its marks would need that
connection. The others try for the lock every 1-2 s, so one takes over within seconds of the
leader's death (the lock connection has TCP keepalives, so a vanished host is noticed too).
A deposed leader may at most finish sending the batch it had in hand; see "Order" for why
that leaves every consumer's view in order.

A round. Fetch up to EVENTS_RELAY_BATCH unpublished events by `position`, send them all with
their confirms outstanding, then mark the confirmed ones in one UPDATE: `published_at`, and
`feed_position` from a sequence in the order they were sent (the pull feed's order). An event
is marked only after the broker confirmed it, so a relay that dies between the publish and the
mark leaves it unpublished, and the next leader sends it again (consumers drop it by id).

Order. One customer's events are written in `sequence` order and their positions follow it
(crm.events.models.Event), so every fetch holds, per customer, the oldest unpublished events
of that customer in `sequence` order, and they are sent in that order on one channel. When
some of a batch are not confirmed (a nack, a timeout, a connection lost mid-batch), the relay
marks, per customer, only the confirmed events *before* that customer's first unconfirmed one:
a later event of the customer may have reached the broker, but it stays unmarked, so the next
round sends the failed one and everything after it again, in order. A consumer that applies a
customer's event n only after n-1 (and drops ids it has seen) therefore always receives the
missing event followed by the ones it held back. Marking the later ones would leave the
outbox believing they were delivered after an earlier event that was not: the gap would be
permanent. Other customers' events are not held back by one customer's failure.

Wake-up: a short poll (EVENTS_RELAY_POLL_INTERVAL, 50 ms) while the outbox is empty, none
while it is not. Not LISTEN/NOTIFY: a transaction that notifies takes a database-wide lock
at its commit and holds it through the commit's flush, which serialises every write's commit;
a poll on the small partial index of unpublished events costs the leader alone a fraction of a
millisecond.

No broker (EVENTS_AMQP_URL unset): the relay still runs with crm.events.publisher.NoBroker and
marks each event published as it finds it, so the feed, the status numbers and retention work
the same with or without RabbitMQ.

Broker down: requests never wait on the relay. The publisher confirms nothing, the relay
backs off (0.2 s doubling to 10 s) and tries again; the backlog and the age of the oldest
unpublished event are logged (a warning while it grows), in GET /api/events/status, and in the
crm_events_* gauges, published by the leader alone.

Retention: the leader purges events published more than EVENTS_RETENTION_DAYS ago, a batch
per round at most, so publishing never waits behind a long delete; unpublished events are
never purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from crm.broker import Backoff
from crm.config import Settings
from crm.db.connect import connect_timeout, driver_dsn, server_settings, watch_for_dead_peer
from crm.events.outbox import envelope
from crm.events.publisher import NoBroker, Outgoing, Publisher, RabbitPublisher, routing_key
from crm.observability import metrics

log = structlog.get_logger("crm.events.relay")

# pg_try_advisory_lock(int, int): this database's relay leadership (pg_locks: classid, objid).
LOCK_CLASS = 0x63726D  # "crm"
LOCK_RELAY = 1

# Seconds between a follower's tries for the lock: 1-2 s.
_FOLLOW_MIN, _FOLLOW_MAX = 1.0, 2.0
# Seconds between the leader's looks at the backlog (log, gauges) and at the retention window.
_STATUS_EVERY = 5.0
_RETENTION_EVERY = 60.0
PURGE_BATCH = 5_000
# The backlog is worth a warning once its oldest event has waited this long.
_LATE_AFTER = 10.0

# Seconds between looks at a publisher that is not connected.
_NOT_READY_PAUSE = 0.1

_TRY_LOCK = "SELECT pg_try_advisory_lock($1, $2)"

_FETCH = """
SELECT position, id, type, customer_id, subject, sequence, time, data::text AS data
FROM events WHERE published_at IS NULL
ORDER BY position
LIMIT $1
"""

# Feed positions in the order of the array (the order of publication): the ordered subquery
# is not pulled up, so nextval runs row by row in that order.
_MARK = """
UPDATE events e SET published_at = now(), feed_position = n.feed_position
FROM (
    SELECT o.position, nextval('events_feed_position_seq') AS feed_position
    FROM (SELECT position, ord FROM unnest($1::bigint[]) WITH ORDINALITY AS t(position, ord) ORDER BY ord) o
) n
WHERE e.position = n.position AND e.published_at IS NULL
"""

# An event a webhook delivery still waits to send (a failing receiver's queue, a disabled
# subscription) stays: its body is read from here at every attempt (crm.webhooks.sender).
_PURGE = """
DELETE FROM events WHERE position IN (
    SELECT e.position FROM events e
    WHERE e.published_at IS NOT NULL AND e.published_at < now() - make_interval(secs => $1)
      AND NOT EXISTS (SELECT FROM webhook_deliveries d WHERE d.status = 'pending' AND d.event_id = e.id)
    ORDER BY e.published_at
    LIMIT $2
)
"""

_BACKLOG = """
SELECT (SELECT count(*) FROM events WHERE published_at IS NULL) AS backlog,
       (SELECT time FROM events WHERE published_at IS NULL ORDER BY position LIMIT 1) AS oldest,
       (SELECT max(published_at) FROM events WHERE published_at IS NOT NULL) AS last_published,
       now() AS now
"""

_LEADER_PRESENT = """
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 2
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
"""


@dataclass(frozen=True, slots=True)
class Backlog:
    count: int
    oldest: datetime | None
    last_published: datetime | None
    now: datetime

    @property
    def oldest_age(self) -> float | None:
        return None if self.oldest is None else max(0.0, (self.now - self.oldest).total_seconds())


async def backlog(connection: asyncpg.Connection) -> Backlog:
    """How many events wait, since when, and when the last one was published."""
    row = await connection.fetchrow(_BACKLOG)
    assert row is not None
    return Backlog(row["backlog"], row["oldest"], row["last_published"], row["now"])


async def leader_present(connection: asyncpg.Connection) -> bool:
    """Whether some relay (of any instance) holds this database's leadership now."""
    return bool(await connection.fetchval(_LEADER_PRESENT, LOCK_CLASS, LOCK_RELAY))


async def purge(connection: asyncpg.Connection, retention_seconds: float, batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` events published longer than `retention_seconds` ago; how many."""
    status: str = await connection.execute(_PURGE, retention_seconds, batch)
    return int(status.rpartition(" ")[2])


def to_outgoing(row: asyncpg.Record) -> Outgoing:
    body = json.dumps(envelope(row), separators=(",", ":")).encode()
    return Outgoing(str(row["id"]), routing_key(row["type"]), body)


def confirmed_prefixes(rows: Sequence[asyncpg.Record], confirmed: Sequence[bool]) -> list[int]:
    """The positions to mark: per customer, the confirmed events before its first unconfirmed one."""
    held: set[Any] = set()
    positions = []
    for row, ok in zip(rows, confirmed, strict=True):
        customer = row["customer_id"]
        if customer in held:
            continue
        if ok:
            positions.append(row["position"])
        else:
            held.add(customer)
    return positions


def publisher_for(settings: Settings) -> Publisher:
    if settings.events_amqp_url:
        return RabbitPublisher(
            settings.events_amqp_url, settings.events_exchange, timeout=settings.events_publish_timeout
        )
    return NoBroker()


# For tests: runs after a batch's confirms, before its mark.
AfterPublish = Callable[[Sequence[asyncpg.Record]], Awaitable[None]]


class Relay:
    """One process's relay: follows until it holds the lock, then leads until its connection fails."""

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        publisher: Publisher | None = None,
        *,
        after_publish: AfterPublish | None = None,
        publish_metrics: bool = True,
    ) -> None:
        self.settings = settings
        self.dsn = driver_dsn(database_url)
        self.publisher = publisher if publisher is not None else publisher_for(settings)
        self.after_publish = after_publish
        self.publish_metrics = publish_metrics
        self.leading = False
        self.published = 0  # events this relay marked published
        self.batches = 0
        self.became_leader = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_backlog: int | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crm-events-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.publisher.stop()

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def _run(self) -> None:
        await self.publisher.start()
        backoff = Backoff(initial=0.5, maximum=10.0)
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await self._connect()
                await self._follow(connection)
                self._lead_started()
                backoff.reset()
                await self._lead(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database went away: try again later
                log.warning("events relay stopped, will retry", error=f"{type(exc).__name__}: {exc}", pid=os.getpid())
            finally:
                if self.leading:
                    self._lead_ended()
                if connection is not None:
                    # terminate, not close: a dead connection's close would wait for an answer.
                    connection.terminate()
            await asyncio.sleep(backoff.delay())

    async def _follow(self, connection: asyncpg.Connection) -> None:
        """Return once this relay holds the lock, trying every 1-2 s."""
        while True:
            if await connection.fetchval(_TRY_LOCK, LOCK_CLASS, LOCK_RELAY):
                return
            await asyncio.sleep(random.uniform(_FOLLOW_MIN, _FOLLOW_MAX))  # noqa: S311 - jitter

    async def _connect(self) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            self.dsn,
            timeout=connect_timeout(self.settings),
            command_timeout=self.settings.db_client_timeout,
            server_settings=server_settings(self.settings, "crm-events-relay"),
        )
        watch_for_dead_peer(connection, self.settings)
        return connection

    def _lead_started(self) -> None:
        self.leading = True
        self.became_leader.set()
        log.info("events relay leading", pid=os.getpid())

    def _lead_ended(self) -> None:
        self.leading = False
        self.became_leader.clear()
        if self.publish_metrics:
            metrics.EVENTS_BACKLOG.set(0)
            metrics.EVENTS_OLDEST_AGE.set(0)

    async def _lead(self, connection: asyncpg.Connection) -> None:
        settings = self.settings
        failing = Backoff(initial=0.2, maximum=10.0)
        next_status = 0.0
        next_purge = time.monotonic() + 1.0
        purging = False
        while True:
            now = time.monotonic()
            if now >= next_status:
                await self.observe(connection)
                next_status = now + _STATUS_EVERY
            if purging or now >= next_purge:
                retention = settings.events_retention_days * 86_400
                purging = await purge(connection, retention) == PURGE_BATCH
                next_purge = now + _RETENTION_EVERY
            if not self.publisher.ready():
                # Not connected (yet): nothing could be confirmed; the supervisor reconnects.
                await asyncio.sleep(_NOT_READY_PAUSE)
                continue
            rows = await connection.fetch(_FETCH, settings.events_relay_batch)
            if not rows:
                await asyncio.sleep(settings.events_relay_poll_interval)
                continue
            confirmed = await self.publisher.publish([to_outgoing(row) for row in rows])
            if self.after_publish is not None:
                await self.after_publish(rows)
            positions = confirmed_prefixes(rows, confirmed)
            if positions:
                await connection.execute(_MARK, positions)
                self.published += len(positions)
                self.batches += 1
            if len(positions) < len(rows):
                await asyncio.sleep(failing.delay())
            else:
                failing.reset()

    async def observe(self, connection: asyncpg.Connection) -> Backlog:
        """The backlog into the gauges, and into the log while it is late (a warning while it grows)."""
        figures = await backlog(connection)
        age = figures.oldest_age
        if self.publish_metrics:
            metrics.EVENTS_BACKLOG.set(figures.count)
            metrics.EVENTS_OLDEST_AGE.set(age or 0)
        growing = self._last_backlog is not None and figures.count > self._last_backlog
        if age is not None and age > _LATE_AFTER:
            (log.warning if growing else log.info)(
                "events waiting to be published",
                backlog=figures.count,
                oldest_unpublished_age_seconds=round(age, 1),
                growing=growing,
            )
        self._last_backlog = figures.count
        return figures


def utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
