"""Webhook subscriptions: the rules (URL checks, secrets, rotation, retries); services only flush."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from crm.common.pagination import Cursor
from crm.config import Settings
from crm.errors import Conflict, NotFound, ValidationFailed
from crm.events.outbox import SOURCE
from crm.webhooks import addresses, queries, signing
from crm.webhooks.schemas import (
    TEST_TYPE,
    DeliveryOut,
    DeliveryPage,
    DeliveryPagination,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)


async def checked_url(url: str, settings: Settings) -> str:
    try:
        await addresses.check(url, allow_private=settings.webhook_allow_private_networks)
    except addresses.Refused as exc:
        raise ValidationFailed.field("url", str(exc)) from None
    return url


async def create(session: AsyncSession, body: WebhookCreate, settings: Settings) -> WebhookWithSecret:
    url = await checked_url(body.url, settings)  # before the first statement: no connection is held meanwhile
    secret = signing.new_secret()
    row = await queries.insert(session, url, _unique(body.events), body.description, secret)
    return WebhookWithSecret.model_validate({**row, "secret": secret})


async def list_all(session: AsyncSession) -> list[WebhookOut]:
    return [WebhookOut.model_validate(dict(row)) for row in await queries.all_subscriptions(session)]


async def get(session: AsyncSession, subscription_id: UUID, *, lock: bool = False) -> WebhookOut:
    row = await queries.subscription(session, subscription_id, lock=lock)
    if row is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return WebhookOut.model_validate(dict(row))


async def update(
    session: AsyncSession, subscription_id: UUID, body: WebhookUpdate, settings: Settings, admin: UUID
) -> WebhookOut:
    changes = body.changes()
    if "url" in changes:
        changes["url"] = await checked_url(changes["url"], settings)
    current = await get(session, subscription_id, lock=True)
    if "events" in changes:
        changes["events"] = _unique(changes["events"])
    enabled = changes.get("enabled")
    if enabled is True and not current.enabled:
        # Resumed: its pending deliveries go again, and the 5 days are counted afresh.
        changes.update(disabled_reason=None, disabled_at=None, failing_since=None)
    elif enabled is False and current.enabled:
        changes.update(disabled_reason=f"disabled by {admin}", disabled_at=datetime.now(UTC))
    elif enabled is not None:
        del changes["enabled"]
    if not changes:
        return current
    return WebhookOut.model_validate(dict(await queries.update(session, subscription_id, changes)))


async def delete(session: AsyncSession, subscription_id: UUID) -> None:
    if not await queries.delete(session, subscription_id):
        raise NotFound(f"no webhook subscription {subscription_id}")


async def rotate_secret(session: AsyncSession, subscription_id: UUID, settings: Settings) -> WebhookWithSecret:
    """A new secret; the one it replaces signs beside it for the overlap (a rotation before then drops the older)."""
    secret = signing.new_secret()
    row = await queries.rotate(session, subscription_id, secret, settings.webhook_secret_overlap_seconds)
    if row is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return WebhookWithSecret.model_validate({**row, "secret": secret})


async def send_test(session: AsyncSession, subscription_id: UUID) -> DeliveryOut:
    """A `crm.webhook.test` delivery of its own, in no customer's queue, due at once."""
    subscription = await get(session, subscription_id)
    _must_be_enabled(subscription)
    event_id = uuid.uuid4()
    payload: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event_id),
        "source": SOURCE,
        "type": TEST_TYPE,
        "subject": str(subscription_id),
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"webhook": {"id": str(subscription_id), "url": subscription.url}, "message": "a test event"},
    }
    return delivery_out(await queries.insert_test_delivery(session, subscription_id, event_id, payload))


async def retry(session: AsyncSession, subscription_id: UUID, delivery_id: UUID) -> DeliveryOut:
    """Send a delivery again now, whatever its status, with the whole schedule ahead."""
    _must_be_enabled(await get(session, subscription_id))
    delivery = await queries.delivery(session, subscription_id, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id} of webhook subscription {subscription_id}")
    if delivery["status"] == "pending" and await queries.held_back(session, delivery):
        raise Conflict(
            "an earlier event of this customer is still pending for this subscription: this one follows it "
            "(retry that one)"
        )
    again = await queries.retry_now(session, delivery_id)
    if again is None:
        raise Conflict("an attempt of this delivery is being sent now; see its outcome in the deliveries list")
    return delivery_out(again)


async def deliveries(
    session: AsyncSession, subscription_id: UUID, status: str | None, cursor: str | None, limit: int
) -> DeliveryPage:
    await get(session, subscription_id)
    before = _position(cursor) if cursor is not None else None
    rows = await queries.deliveries(session, subscription_id, status, before, limit)
    page, more = rows[:limit], len(rows) > limit
    next_cursor = Cursor("position", "DESC", str(page[-1]["position"]), str(page[-1]["id"])).encode() if more else None
    return DeliveryPage(
        deliveries=[delivery_out(row) for row in page],
        pagination=DeliveryPagination(limit=limit, has_next=more, next_cursor=next_cursor),
    )


def delivery_out(row: RowMapping) -> DeliveryOut:
    attempts = row["attempt_log"]
    return DeliveryOut.model_validate(
        {
            **row,
            "webhook_id": row["event_id"],
            "attempts": json.loads(attempts) if isinstance(attempts, str) else attempts,
        }
    )


def _position(token: str) -> int:
    cursor = Cursor.decode(token)
    if cursor.sort_by != "position" or cursor.value is None or not cursor.value.isdigit():
        raise ValidationFailed.field("cursor", "is not a cursor of this list")
    return int(cursor.value)


def _must_be_enabled(subscription: WebhookOut) -> None:
    if not subscription.enabled:
        raise Conflict(
            f"the subscription is disabled ({subscription.disabled_reason}); PATCH it with enabled: true first"
        )


def _unique(events: list[str]) -> list[str]:
    return list(dict.fromkeys(events))
