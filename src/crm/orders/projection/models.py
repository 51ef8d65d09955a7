from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import Boolean, Index, Integer, Numeric, String, false, func, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import DateTime, Uuid

from crm.db.models import Base

# The statuses that do not count towards a customer's figures.
NOT_COUNTED = ("cancelled", "returned")


class OrderProjection(Base):
    """The latest state seen of one Order Service order.

    `version` is the event's `data.version`; NULL when the state came from the Order
    Service's list (which carries none): then `updated_at` orders the states instead.
    A deleted order stays as a tombstone so a late, older event cannot bring it back.
    """

    __tablename__ = "order_projections"

    order_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[UUID] = mapped_column(Uuid)
    status: Mapped[str | None] = mapped_column(String(16))
    total_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), server_default="0")
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int | None] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, server_default=false())
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # The figures' recomputation reads one customer's counted orders from this index alone.
        Index(
            "ix_order_projections_customer_counted",
            "customer_id",
            postgresql_include=["total_amount", "created_at"],
            postgresql_where=text("NOT deleted AND status NOT IN ('cancelled', 'returned')"),
        ),
        Index("ix_order_projections_customer_id", "customer_id"),
    )


class CustomerOrderFigures(Base):
    """One customer's figures over the counted orders of `order_projections`.

    Every customer has a row (a trigger on customers makes it, crm/orders/sql/customer_figures.sql),
    so the customer list sorts and filters by these columns through their indexes; rows for ids
    the CRM has not got (orders naming a deleted customer) may exist too, and every read joins
    customers.
    """

    __tablename__ = "customer_order_figures"

    customer_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    total_orders: Mapped[int] = mapped_column(Integer, server_default="0")
    total_spent: Mapped[Decimal] = mapped_column(Numeric(14, 2), server_default="0")
    first_order_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_order_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When a change last reached these figures (an event or the sync); NULL: never.
    orders_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The list's sorts by a figure, in (column, customer_id) order for offset and cursor pages.
        Index("ix_customer_order_figures_total_spent", "total_spent", "customer_id"),
        Index("ix_customer_order_figures_total_orders", "total_orders", "customer_id"),
        # NULLS FIRST: ascending starts with those who never ordered, descending ends with them.
        Index("ix_customer_order_figures_last_order_date", text("last_order_date NULLS FIRST"), "customer_id"),
        # The filterable figures by customer from the index alone (probes and capped counts).
        Index(
            "ix_customer_order_figures_filters",
            "customer_id",
            postgresql_include=["total_orders", "total_spent", "last_order_date"],
        ),
    )
