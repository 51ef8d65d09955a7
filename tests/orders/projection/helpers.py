"""Shared by the projection tests: a session factory on the test database, and the direct sum."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.config import Settings
from crm.db.transaction import create_engine, create_sessionmaker
from crm.orders.projection.models import NOT_COUNTED


@asynccontextmanager
async def sessionmaker_for(settings: Settings, database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings, database_url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def expected_figures(orders: Iterable[dict[str, Any]]) -> dict[UUID, tuple[int, Decimal]]:
    """Per customer: (count, sum) over the counted orders, from the source's own final states."""
    figures: dict[UUID, tuple[int, Decimal]] = {}
    for order in orders:
        customer = UUID(str(order["customer_id"]))
        count, total = figures.get(customer, (0, Decimal(0)))
        if order.get("deleted") or order["status"] in NOT_COUNTED:
            figures[customer] = (count, total)
            continue
        figures[customer] = (count + 1, total + Decimal(str(order["total_amount"])))
    return figures


async def stored_figures(db: asyncpg.Connection[Any]) -> dict[UUID, tuple[int, Decimal]]:
    rows = await db.fetch("SELECT customer_id, total_orders, total_spent FROM customer_order_figures")
    return {r["customer_id"]: (r["total_orders"], r["total_spent"]) for r in rows}


def nonzero(figures: dict[UUID, tuple[int, Decimal]]) -> dict[UUID, tuple[int, Decimal]]:
    return {k: v for k, v in figures.items() if v[0]}
