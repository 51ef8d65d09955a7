from __future__ import annotations

from uuid import UUID

from sqlalchemy import Boolean, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from crm.db import Base, TimestampedVersioned


class Contact(TimestampedVersioned, Base):
    __tablename__ = "contacts"

    customer_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("customers.id", ondelete="CASCADE"))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    position: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    is_primary: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        # "At most one primary per customer" is the database's job; "at least one" is the service's.
        Index(
            "uq_contacts_one_primary_per_customer",
            "customer_id",
            unique=True,
            postgresql_where=text("is_primary"),
        ),
        Index("ix_contacts_customer_id_created_at", "customer_id", "created_at"),
    )
