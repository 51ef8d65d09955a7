"""The ids of erased records: what every endpoint answers 410 Gone for."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import String, func
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db.models import Base


class ErasedId(Base):
    """A customer, contact or interaction id that an erasure removed for good.

    Ids only (random UUIDs carry nothing of the person): looked up only when a record lookup
    missed, to tell "never was" (404) from "was, and was erased" (410).
    """

    __tablename__ = "erased_ids"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[UUID] = mapped_column(Uuid)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
