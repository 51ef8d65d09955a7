from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from crm.db.models import Base, TimestampedVersioned


class CustomerStatus(StrEnum):
    active = "active"
    inactive = "inactive"
    lead = "lead"
    prospect = "prospect"
    customer = "customer"
    # Awaiting a decision (a sign-up or an application someone must approve): the prototype's status.
    pending = "pending"


class CustomerType(StrEnum):
    individual = "individual"
    business = "business"
    government = "government"
    nonprofit = "nonprofit"


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


SORT_INDEXED = ("created_at", "updated_at", "first_name", "last_name", "email", "company_name", "status", "type")
# The list's filters, carried by every sort index so a filtered page is an index-only walk.
LIST_FILTERS = ("status", "type", "owner_id")


def search_text_of(*columns: Any) -> Any:
    """The text a customer is searched by, exactly as the trigram index is built over it."""
    return func.crm_customer_search_text(*(text(c) if isinstance(c, str) else c for c in columns))


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
        # Emails are unique ignoring case. In bytewise (COLLATE "C") order, so the index also
        # serves the email prefix walk of search (crm.customers.search).
        Index("uq_customers_email_lower", func.lower(email), unique=True),
        # Every allowed sortBy walks an index in (column, id) order, for offset and cursor pages;
        # each carries the filter columns, so the rows a filter skips are never read from the table.
        *(
            Index(f"ix_customers_{c}_id", c, "id", postgresql_include=[f for f in LIST_FILTERS if f != c])
            for c in SORT_INDEXED
        ),
        # One owner's customers in the default order, and their count, from the index alone.
        Index(
            "ix_customers_owner_id_created_at_id", "owner_id", "created_at", "id", postgresql_include=["status", "type"]
        ),
        # Search's exact/prefix walks, one per field, lowered, in bytewise order (see
        # crm.customers.search and the initial migration); the two name indexes also
        # serve full-name queries ("first last", "last first"). These and the email index are
        # COLLATE "C" in the migrations; not declared here because SQLAlchemy's reflection
        # does not report an index's collation, so `alembic check` would see a difference.
        Index(
            "ix_customers_search_first_last",
            func.lower(first_name),
            func.lower(last_name),
            "id",
        ),
        Index(
            "ix_customers_search_last_first",
            func.lower(last_name),
            func.lower(first_name),
            "id",
        ),
        Index(
            "ix_customers_search_company",
            func.lower(company_name),
            "id",
            postgresql_where=company_name.is_not(None),
        ),
        Index("ix_customers_search_tax_id", func.lower(tax_id), "id", postgresql_where=tax_id.is_not(None)),
        Index(
            "ix_customers_search_phone",
            func.regexp_replace(phone, r"\D", "", "g"),
            "id",
            postgresql_where=phone.is_not(None),
        ),
        # Substring and typo-tolerant search (the function: crm/customers/sql/search_text.sql).
        Index(
            "ix_customers_search_trgm",
            search_text_of("first_name", "last_name", "email", "company_name", "tax_id", "phone"),
            postgresql_using="gin",
            postgresql_ops={"crm_customer_search_text": "gin_trgm_ops"},
        ),
    )


class CustomerWord(Base):
    """A lowered word of some customer's name, email or company name (or one it had): the
    typo-tolerant search's dictionary, kept by a trigger (crm/customers/sql/customer_words.sql)."""

    __tablename__ = "customer_words"

    word: Mapped[str] = mapped_column(Text, primary_key=True)

    __table_args__ = (
        Index("ix_customer_words_trgm", "word", postgresql_using="gin", postgresql_ops={"word": "gin_trgm_ops"}),
    )
