"""The trash table: rows a DELETE moved out of the live tables, restorable until purged."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, Boolean, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db.models import Base


class TrashedRow(Base):
    """One row a DELETE took out of `customers`, `contacts` or `interactions`, exactly as it was.

    A delete moves rows here (crm.trash.queries), so no live read, index, counter or statistic
    has to know about deleted rows: the live tables' DELETE triggers keep the aggregates exact,
    and a restore's INSERT brings the row back through the same triggers.

    `deletion_id` is shared by every row one DELETE request took (a customer with its contacts
    and interactions); `head` marks the row the request named. Only heads are listed, restored
    on their own and purged (a purge takes a head's whole deletion): the rest come and go with
    their customer. `record` is `to_jsonb` of the row with its version moved one step (the
    version the `deleted` history entry gives it). `unlinked` (contacts only) are the
    interactions whose `contact_id` the delete set to NULL, re-linked by a restore.
    `author_id` is an interaction's `user_id`, for an employee's view of what they may restore.
    """

    __tablename__ = "trash"

    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[UUID] = mapped_column(Uuid)
    deletion_id: Mapped[UUID] = mapped_column(Uuid)
    head: Mapped[bool] = mapped_column(Boolean)
    author_id: Mapped[UUID | None] = mapped_column(Uuid)
    record: Mapped[dict[str, Any]] = mapped_column(JSONB)
    unlinked: Mapped[list[UUID] | None] = mapped_column(ARRAY(Uuid))
    summary: Mapped[str] = mapped_column(Text)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_by: Mapped[UUID | None] = mapped_column(Uuid)

    __table_args__ = (
        # The listing, newest first: everything, one entity, one author's interactions. The
        # first is also the purge's walk, oldest first: a head is due CRM_TRASH_DAYS after
        # `deleted_at` (no stored purge_after: a changed setting applies to all of the trash).
        Index("ix_trash_deleted_at_id", "deleted_at", "id", postgresql_where=text("head")),
        Index("ix_trash_entity_deleted_at_id", "entity", "deleted_at", "id", postgresql_where=text("head")),
        Index(
            "ix_trash_author_id_deleted_at_id",
            "author_id",
            "deleted_at",
            "id",
            postgresql_where=text("head AND author_id IS NOT NULL"),
        ),
        # A restore's and a purge's whole deletion; an erasure's whole customer.
        Index("ix_trash_deletion_id", "deletion_id"),
        Index("ix_trash_customer_id", "customer_id"),
    )
