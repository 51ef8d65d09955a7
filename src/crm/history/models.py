"""The history table: one append-only row per change of a customer, contact or interaction."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db.models import Base


class HistoryEntity(StrEnum):
    customer = "customer"
    contact = "contact"
    interaction = "interaction"


class HistoryAction(StrEnum):
    created = "created"
    updated = "updated"
    deleted = "deleted"
    restored = "restored"
    erased = "erased"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class HistoryEntry(Base):
    """One change, written in the transaction that made it (crm.history.service.record).

    No foreign keys: an entry outlives its record (a purge, an erasure). `at` is the moment
    the row was written (clock_timestamp(), not the transaction's start): a writer waits for
    the record's row lock before it writes its entry, so a later version is always written at
    a later moment, and "newest first" is version order for each record. Erasure replaces the
    values inside `changes` with null and keeps the keys, so the names stay plain JSON.
    """

    __tablename__ = "history"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid())
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[UUID] = mapped_column(Uuid)
    customer_id: Mapped[UUID] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(16))
    # Null for changes no user made (a bulk load, a purge).
    actor_user_id: Mapped[UUID | None] = mapped_column(Uuid)
    actor_role: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        CheckConstraint(_in("entity", HistoryEntity), name="entity"),
        CheckConstraint(_in("action", HistoryAction), name="action"),
        # A customer's page (its own entries and its contacts' and interactions'), newest first.
        Index("ix_history_customer_id_at_id", "customer_id", "at", "id"),
        # "What did this user change last week".
        Index("ix_history_actor_user_id_at_id", "actor_user_id", "at", "id"),
        # Everything, newest first (the global list without a user).
        Index("ix_history_at_id", "at", "id"),
        # One action across everyone: the rare ones (deleted, restored, erased) are what an
        # auditor asks for, and walking all entries newest first would meet few of them.
        Index("ix_history_action_at_id", "action", "at", "id"),
    )
