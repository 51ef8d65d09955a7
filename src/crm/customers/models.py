from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from sqlalchemy import CheckConstraint, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from crm.db import Base, TimestampedVersioned


class CustomerStatus(StrEnum):
    active = "active"
    inactive = "inactive"
    lead = "lead"
    prospect = "prospect"
    customer = "customer"


class CustomerType(StrEnum):
    individual = "individual"
    business = "business"
    government = "government"
    nonprofit = "nonprofit"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Customer(TimestampedVersioned, Base):
    __tablename__ = "customers"

    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(32))
    company_name: Mapped[str | None] = mapped_column(String(255))
    tax_id: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(500))
    city: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), server_default=CustomerStatus.active.value)
    type: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[UUID] = mapped_column(Uuid)

    __table_args__ = (
        CheckConstraint(_in("status", CustomerStatus), name="status"),
        CheckConstraint(_in("type", CustomerType), name="type"),
        # Emails are unique ignoring case; the index also serves exact email look-ups.
        Index("uq_customers_email_lower", func.lower(email), unique=True),
        # Default list order (created_at DESC, id) and the usual filters.
        Index("ix_customers_created_at_id", "created_at", "id"),
        Index("ix_customers_status_type", "status", "type"),
        Index("ix_customers_owner_id", "owner_id"),
    )
