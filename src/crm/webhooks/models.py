"""Webhook subscriptions, their deliveries (one per matching event) and each delivery's attempts.

Deliveries are written by a trigger on `events` (sql/deliveries.sql), in the transaction of
the change, so one exists exactly when its event does. They carry the event's customer and
`sequence` (null for a subscription's test events) because the dispatcher keeps each
(subscription, customer) pair in sequence order; the body is the event's row, read when
sent (so erasure, which rewrites the events, reaches what webhooks send), except for test
events, which have no row and keep their body here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, ForeignKey, Identity, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db.models import Base


class WebhookSubscription(Base):
    """One receiver URL and the event types it wants.

    The secrets are kept in clear: HMAC signing needs the key itself (it cannot be hashed
    like a password), and encrypting it under a key read from the same environment as the
    database URL would protect only copies of the database. They are never answered except
    once, when made. `previous_secret` signs beside `secret` until `previous_secret_expires_at`.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    url: Mapped[str] = mapped_column(Text)
    # Exact types (`crm.customer.updated`), an entity's (`crm.customer.*`) or every type (`*`).
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Why it is not enabled (an admin's PATCH, or failing every delivery for days), and since when.
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The first failed attempt since the last success: failing that long disables the subscription.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    # The listing's order and cursor: the order deliveries were made in.
    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    subscription_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    # `webhook-id` of every attempt: the event's id (receivers drop duplicates by it).
    event_id: Mapped[UUID] = mapped_column(Uuid)
    type: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[UUID | None] = mapped_column(Uuid)
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    # Only test events, which have no `events` row.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # pending (waiting for its turn, its next attempt, or in flight), succeeded, failed.
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Attempts left are counted from here: a manual retry starts the schedule again.
    schedule_start: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Null while pending: held behind an earlier delivery of its queue (sql/deliveries.sql).
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # A dispatcher sending it holds it until then; one that died lets it go at that moment.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # The head of each (subscription, customer) queue: its lowest pending sequence.
        Index(
            "ix_webhook_deliveries_queue",
            "subscription_id",
            "customer_id",
            "sequence",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_subscription_id_position", "subscription_id", "position"),
    )


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[UUID] = mapped_column(
        Uuid, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    # The start of the answer (up to 1 KiB of the 64 KiB read), for whoever debugs the receiver.
    response: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
