"""The dispatcher: a task in every instance that sends the due deliveries.

Instances share the work through the database, not a leader: each claims due deliveries with
`FOR UPDATE SKIP LOCKED` and a lease (queries._CLAIM), sends them with no transaction open,
and writes each outcome in a short transaction of its own. Only the head of a (subscription,
customer) queue is ever due, so that customer's events reach that subscription in `sequence`
order, and a failing head holds back only its own queue. When the head fails for good, the
next one goes (the receiver sees the gap in `sequence`, and can have the failed one sent
again with POST .../retry or read it from the feed). An instance that dies mid-attempt leaves
its lease, which expires after the attempt's timeout: another instance sends it again, with
the same `webhook-id` (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import structlog
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.config import Settings
from crm.events.outbox import envelope
from crm.webhooks import queries, sender, signing

log = structlog.get_logger("crm.webhooks")

# A claimed delivery's lease outlasts its attempt by this much, so it is never sent twice at once.
_LEASE_MARGIN_SECONDS = 30.0
# How often an instance purges completed deliveries past their retention, and how many per statement.
_PURGE_EVERY_SECONDS = 3600.0
_PURGE_BATCH = 1000


def body_of(row: RowMapping) -> bytes | None:
    """The bytes to POST: the event's CloudEvent (or a test event's own), or None if the event is gone."""
    payload = row["payload"]
    if payload is not None:
        document = json.loads(payload) if isinstance(payload, str) else payload
    elif row["e_id"] is not None:
        document = envelope(
            {
                "id": row["e_id"],
                "type": row["e_type"],
                "subject": row["e_subject"],
                "time": row["e_time"],
                "customer_id": row["e_customer_id"],
                "sequence": row["e_sequence"],
                "data": row["e_data"],
            }
        )
    else:
        return None
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


class Dispatcher:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        limits = httpx.Limits(max_connections=self.settings.webhook_concurrency, max_keepalive_connections=20)
        self._http = httpx.AsyncClient(follow_redirects=False, limits=limits, timeout=self.settings.webhook_timeout)
        self._task = asyncio.create_task(self._run(self._http), name="crm-webhooks")

    def wake(self) -> None:
        """Look for due deliveries now (a test event, a manual retry) instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Claim no more; let the attempts in flight finish (their timeout bounds it) and write their outcome.

        One cut short would be sent again after its lease, as after a crash; one waited for is not.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        sending = set(self._sending)
        if sending:
            _, late = await asyncio.wait(sending, timeout=self.settings.webhook_timeout + 1)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._http is not None:
            await self._http.aclose()

    async def purge(self) -> int:
        """Delete the completed deliveries past their retention, in batches; how many went."""
        purged = 0
        while True:
            async with self.sessionmaker() as session, session.begin():
                count = await queries.purge_completed(
                    session, self.settings.webhook_delivery_retention_days, _PURGE_BATCH
                )
            purged += count
            if count < _PURGE_BATCH:
                return purged

    async def _run(self, http: httpx.AsyncClient) -> None:
        settings = self.settings
        purged_at = 0.0
        while True:
            if time.monotonic() - purged_at >= _PURGE_EVERY_SECONDS:
                purged_at = time.monotonic()
                try:
                    if purged := await self.purge():
                        log.info("webhook deliveries past their retention purged", count=purged)
                except Exception:  # the database may be away: try again at the next hour
                    log.warning("webhook dispatcher could not purge deliveries", exc_info=True)
            self._wake.clear()
            free = settings.webhook_concurrency - len(self._sending)
            claimed: list[RowMapping] = []
            if free > 0:
                try:
                    claimed = list(await self._claim(free))
                except Exception:  # the database may be away: try again at the next poll
                    log.warning("webhook dispatcher could not claim deliveries", exc_info=True)
            for row in claimed:
                task = asyncio.create_task(self._deliver(http, row))
                self._sending.add(task)
                task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue  # more may be due; room permitting, claim again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), settings.webhook_poll_interval)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        # The next of its queue may be due now.
        self._wake.set()

    async def _claim(self, limit: int) -> list[RowMapping]:
        async with self.sessionmaker() as session, session.begin():
            return list(await queries.claim(session, limit, self.settings.webhook_timeout + _LEASE_MARGIN_SECONDS))

    async def _deliver(self, http: httpx.AsyncClient, row: RowMapping) -> None:
        try:
            await self._attempt(http, row)
        except asyncio.CancelledError:
            raise
        except Exception:  # its lease expires and it is tried again
            log.exception("webhook delivery attempt failed unexpectedly", delivery_id=str(row["id"]))

    async def _attempt(self, http: httpx.AsyncClient, row: RowMapping) -> None:
        settings = self.settings
        at = datetime.now(UTC)
        body = body_of(row)
        if body is None:
            outcome = sender.Outcome(False, None, "the event is no longer kept", 0, None, None)
        else:
            secrets_ = [row["secret"], *([row["previous_secret"]] if row["previous_secret"] else [])]
            headers = signing.headers(secrets_, str(row["event_id"]), int(time.time()), body)
            outcome = await sender.attempt(
                http,
                row["url"],
                body,
                headers,
                within=settings.webhook_timeout,
                allow_private=settings.webhook_allow_private_networks,
            )
        status, next_at = self._next(row, outcome, body is None)
        async with self.sessionmaker() as session, session.begin():
            await queries.record_attempt(
                session,
                row["id"],
                status=status,
                at=at,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                response=outcome.response,
                next_attempt_at=next_at,
            )
            subscription_id: UUID = row["subscription_id"]
            if status != "pending" and row["customer_id"] is not None:
                await queries.schedule_next(session, subscription_id, row["customer_id"])
            if outcome.ok:
                await queries.subscription_succeeded(session, subscription_id)
            elif await queries.subscription_failed(session, subscription_id, settings.webhook_disable_after_seconds):
                log.warning(
                    "webhook subscription disabled: every delivery failed", subscription_id=str(subscription_id)
                )
        log.info(
            "webhook attempt",
            delivery_id=str(row["id"]),
            event_type=row["type"],
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            outcome=status,
        )

    def _next(self, row: RowMapping, outcome: sender.Outcome, gone: bool) -> tuple[str, datetime | None]:
        """(the delivery's status after this attempt, when the next one is due)."""
        if outcome.ok:
            return "succeeded", None
        schedule = self.settings.webhook_retry_schedule
        failed_so_far = row["attempts"] + 1 - row["schedule_start"]
        if gone or failed_so_far > len(schedule):
            return "failed", None
        delay = outcome.retry_after if outcome.retry_after is not None else schedule[failed_so_far - 1]
        return "pending", datetime.now(UTC) + timedelta(seconds=delay)
