"""The outbox: one row per committed change, written in the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Identity, Index, Sequence, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db.models import Base


class Event(Base):
    """One CloudEvent waiting for (or past) its publication; its id is the history entry's id.

    `position` is the order rows were written in. Two customers' events may commit in another
    order than their positions, but one customer's events cannot: each takes the customer's
    `event_sequences` row lock, held to the commit, so their positions and their `sequence`
    both follow commit order. `feed_position` is given by the relay when it publishes an event,
    so the pull feed reads in publication order with a stable cursor.
    """

    __tablename__ = "events"

    position: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    id: Mapped[UUID] = mapped_column(Uuid, unique=True)
    type: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[UUID] = mapped_column(Uuid)
    subject: Mapped[UUID] = mapped_column(Uuid)
    sequence: Mapped[int] = mapped_column(BigInteger)
    # The moment the row was written: the closest to the commit a transaction can know.
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    # The CloudEvent's `data`: {<entity>: record, "changes", "actor", "request_id"}.
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    feed_position: Mapped[int | None] = mapped_column(BigInteger, unique=True)

    __table_args__ = (
        Index("uq_events_customer_id_sequence", "customer_id", "sequence", unique=True),
        # What the relay has left to publish, oldest first; small however long the table grows.
        Index("ix_events_unpublished", "position", postgresql_where=text("published_at IS NULL")),
        # The feed filtered by type: that type's events in feed order (a rare type would otherwise
        # walk the whole feed). By customer, uq_events_customer_id_sequence serves (same order).
        Index(
            "ix_events_type_feed_position",
            "type",
            "feed_position",
            postgresql_where=text("feed_position IS NOT NULL"),
        ),
        # Retention: the published events older than the window, oldest first.
        Index("ix_events_published_at", "published_at", postgresql_where=text("published_at IS NOT NULL")),
    )


# The relay's counter for `feed_position`: the pull feed's order is the order of publication.
# A sequence, not max(feed_position) + 1: the retention purge may empty the table, and a
# consumer's cursor must never point past numbers that would be given again.
FEED_POSITIONS = Sequence("events_feed_position_seq", metadata=Base.metadata)


class EventSequence(Base):
    """The last `sequence` given to each customer's events (kept through trash and erasure)."""

    __tablename__ = "event_sequences"

    customer_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)
