from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db import Base, TimestampedVersioned


class InteractionType(StrEnum):
    call = "call"
    email = "email"
    meeting = "meeting"
    note = "note"
    task = "task"


class Interaction(TimestampedVersioned, Base):
    __tablename__ = "interactions"

    customer_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("customers.id", ondelete="CASCADE"))
    # A deleted contact leaves the interaction in the customer's history, unattributed.
    contact_id: Mapped[UUID | None] = mapped_column(Uuid, ForeignKey("contacts.id", ondelete="SET NULL"))
    user_id: Mapped[UUID] = mapped_column(Uuid)
    type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    date: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("type IN (" + ", ".join(repr(t.value) for t in InteractionType) + ")", name="type"),
        Index("ix_interactions_customer_id_date", "customer_id", "date"),
        Index("ix_interactions_date", "date"),
        Index("ix_interactions_user_id_date", "user_id", "date"),
        Index("ix_interactions_contact_id", "contact_id"),
    )
