from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from crm.db.models import Base, TimestampedVersioned


def search_text_of(*columns: Any) -> Any:
    """The text a contact is searched by, exactly as the trigram index is built over it."""
    return func.crm_contact_search_text(*(text(c) if isinstance(c, str) else c for c in columns))


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
        # Search (crm.common.tiers, the 2026-12-04-0330 migration): the substring tier walks the
        # newest first; the exact and prefix tiers read each field's lowered value, which the
        # migration indexes in bytewise (COLLATE "C") order (not declared here: reflection does
        # not report an index's collation, so `alembic check` would see a difference).
        Index("ix_contacts_created_at_id", "created_at", "id"),
        Index("ix_contacts_search_first_last", func.lower(text("first_name")), func.lower(text("last_name")), "id"),
        Index("ix_contacts_search_last_first", func.lower(text("last_name")), func.lower(text("first_name")), "id"),
        Index("ix_contacts_search_email", func.lower(text("email")), "id", postgresql_where=text("email IS NOT NULL")),
        Index(
            "ix_contacts_search_position",
            func.lower(text("position")),
            "id",
            postgresql_where=text("position IS NOT NULL"),
        ),
        Index(
            "ix_contacts_search_phone",
            func.regexp_replace(text("phone"), r"\D", "", "g"),
            "id",
            postgresql_where=text("phone IS NOT NULL"),
        ),
        # Substring and typo-tolerant search (the function: crm/contacts/sql/search_text.sql).
        Index(
            "ix_contacts_search_trgm",
            search_text_of("first_name", "last_name", "email", "position", "phone"),
            postgresql_using="gin",
            postgresql_ops={"crm_contact_search_text": "gin_trgm_ops"},
        ),
    )
