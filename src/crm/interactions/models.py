from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db.models import Base, TimestampedVersioned


class InteractionType(StrEnum):
    call = "call"
    email = "email"
    meeting = "meeting"
    note = "note"
    task = "task"


SORT_INDEXED = ("date", "created_at", "type", "subject")


def search_text_of(*columns: Any) -> Any:
    """The text an interaction is searched by, exactly as the trigram index is built over it."""
    return func.crm_interaction_search_text(*(text(c) if isinstance(c, str) else c for c in columns))


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
        # Every list sort across customers walks an index in (column, id) order. Within one
        # customer only the default sort has its own index: a customer's interactions are few
        # enough to sort (thousands at most), and each index is paid for by every write.
        *(Index(f"ix_interactions_{c}_id", c, "id") for c in SORT_INDEXED),
        Index("ix_interactions_customer_id_date_id", "customer_id", "date", "id"),
        Index("ix_interactions_user_id_date", "user_id", "date"),
        Index("ix_interactions_contact_id", "contact_id"),
        # Search's exact and prefix tiers (crm.common.tiers, the 2026-12-04-0330 migration), in
        # bytewise (COLLATE "C") order there: reflection does not report an index's collation.
        # The description by its first 200 characters, as long as a query can be.
        Index("ix_interactions_search_subject", func.lower(text("subject")), "id"),
        Index(
            "ix_interactions_search_description",
            func.left(func.lower(text("description")), 200),
            "id",
            postgresql_where=text("description IS NOT NULL"),
        ),
        # Substring and typo-tolerant search (the function: crm/interactions/sql/search_text.sql).
        Index(
            "ix_interactions_search_trgm",
            search_text_of("subject", "description"),
            postgresql_using="gin",
            postgresql_ops={"crm_interaction_search_text": "gin_trgm_ops"},
        ),
    )


class InteractionWord(Base):
    """A lowered word of some interaction's subject or description (or one it had): whether the
    typo-tolerant search has anything to look for, kept by a trigger (crm/interactions/sql/words.sql)."""

    __tablename__ = "interaction_words"

    word: Mapped[str] = mapped_column(Text, primary_key=True)

    __table_args__ = (
        Index("ix_interaction_words_trgm", "word", postgresql_using="gin", postgresql_ops={"word": "gin_trgm_ops"}),
    )
