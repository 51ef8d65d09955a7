from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db.models import Base


class IdempotencyKey(Base):
    """The first answer to a POST made with an Idempotency-Key, kept 24 h for replays.

    Written in the same transaction as the resource it created, so a key exists if and
    only if its write committed.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    # The headers a replay must repeat (Location, ETag), not the whole response's.
    headers: Mapped[dict[str, str]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
