"""A customer's orders (relayed from the Order Service) and the customer's statistics.

Database work happens in short sessions opened here, closed before any call to the
Order Service, so no pooled connection waits on the network.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.contacts.models import Contact
from crm.customers.models import Customer
from crm.errors import NotFound
from crm.interactions.models import Interaction, InteractionType
from crm.orders.client import OrderQuery, OrderServiceClient, OrderServiceError
from crm.orders.projection.queries import projected_orders
from crm.orders.schemas import MAX_ORDERS_PER_PAGE, Order, OrdersPage

MAX_STATISTICS_ORDERS = 10_000
_PAGE_CONCURRENCY = 4
_CENT = Decimal("0.01")


async def ensure_customer(maker: async_sessionmaker[AsyncSession], customer_id: UUID) -> None:
    async with maker() as session:
        if await session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
            raise NotFound(f"customer {customer_id} not found")


async def customer_orders(
    maker: async_sessionmaker[AsyncSession],
    client: OrderServiceClient,
    customer_id: UUID,
    query: OrderQuery,
    headers: dict[str, str],
) -> OrdersPage:
    # 404 for an unknown customer without bothering the Order Service.
    await ensure_customer(maker, customer_id)
    return await client.list_orders(customer_id, query, headers=headers)


@dataclass(slots=True)
class CrmFigures:
    contacts_total: int
    interactions_total: int
    by_type: dict[str, int]
    first_interaction: datetime | None
    last_interaction: datetime | None


async def crm_figures(maker: async_sessionmaker[AsyncSession], customer_id: UUID) -> CrmFigures:
    async with maker() as session:
        if await session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
            raise NotFound(f"customer {customer_id} not found")
        contacts_total = await session.scalar(
            select(func.count()).select_from(Contact).where(Contact.customer_id == customer_id)
        )
        rows = (
            await session.execute(
                select(Interaction.type, func.count(), func.min(Interaction.date), func.max(Interaction.date))
                .where(Interaction.customer_id == customer_id)
                .group_by(Interaction.type)
            )
        ).all()
    by_type = {t.value: 0 for t in InteractionType}
    firsts: list[datetime] = []
    lasts: list[datetime] = []
    for type_, count, first, last in rows:
        by_type[type_] = count
        firsts.append(first)
        lasts.append(last)
    return CrmFigures(
        contacts_total=contacts_total or 0,
        interactions_total=sum(by_type.values()),
        by_type=by_type,
        first_interaction=min(firsts) if firsts else None,
        last_interaction=max(lasts) if lasts else None,
    )


async def orders_statistics(client: OrderServiceClient, customer_id: UUID, headers: dict[str, str]) -> dict[str, Any]:
    """Aggregate all of a customer's orders (at most 10,000), or say why it cannot.

    Never raises for Order Service trouble: the statistics endpoint answers with the
    CRM's own figures and `available: false` instead.
    """
    deadline = time.monotonic() + client.timeout
    try:
        first = await client.list_orders(
            customer_id, OrderQuery(page=1, limit=MAX_ORDERS_PER_PAGE), headers=headers, deadline=deadline
        )
        # Page with the size the Order Service actually used (it may cap `limit` lower), and
        # never beyond 10,000 orders whatever its (untrusted) totalPages says.
        pages = min(first.pagination.total_pages, max(1, MAX_STATISTICS_ORDERS // first.pagination.limit))
        gate = asyncio.Semaphore(_PAGE_CONCURRENCY)

        async def fetch(page: int) -> OrdersPage:
            async with gate:
                query = OrderQuery(page=page, limit=MAX_ORDERS_PER_PAGE)
                return await client.list_orders(customer_id, query, headers=headers, deadline=deadline)

        tasks = [asyncio.ensure_future(fetch(p)) for p in range(2, pages + 1)]
        try:
            rest = await asyncio.gather(*tasks)
        finally:
            # When one page fails, gather() leaves the others running: stop them, so no read
            # outlives this request (nor records a late failure on the circuit breaker).
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    except OrderServiceError as exc:
        return {"available": False, "reason": exc.detail}

    # Orders can shift between pages while we read; count each order once.
    orders: dict[UUID, Order] = {}
    for page in (first, *rest):
        for order in page.orders:
            orders.setdefault(order.id, order)
    return _aggregate(list(orders.values()), first.pagination.total)


async def projection_statistics(
    maker: async_sessionmaker[AsyncSession], customer_id: UUID, unavailable: dict[str, Any]
) -> dict[str, Any]:
    """When the Order Service could not answer: the same figures from the projection, if it has
    synced that customer (marked `source: projection` and `as_of`), else `unavailable` as it is."""
    async with maker() as session:
        projected = await projected_orders(session, customer_id)
    if projected is None:
        return unavailable
    count = projected.total
    return {
        "available": True,
        "source": "projection",
        "as_of": projected.as_of.isoformat(),
        "total": count,
        "totalAmount": projected.total_amount.quantize(_CENT, ROUND_HALF_UP),
        "averageAmount": (projected.total_amount / count).quantize(_CENT, ROUND_HALF_UP) if count else None,
        "lastOrderDate": projected.last_order_date.isoformat() if projected.last_order_date else None,
        "byStatus": projected.by_status,
    }


def _aggregate(orders: list[Order], upstream_total: int) -> dict[str, Any]:
    total_amount = sum((o.total_amount for o in orders), Decimal(0))
    count = len(orders)
    stats: dict[str, Any] = {
        "available": True,
        "total": max(upstream_total, count),
        "totalAmount": total_amount.quantize(_CENT, ROUND_HALF_UP),
        "averageAmount": (total_amount / count).quantize(_CENT, ROUND_HALF_UP) if count else None,
        "lastOrderDate": max(o.created_at for o in orders).isoformat() if orders else None,
        "byStatus": dict(Counter(o.status.value for o in orders)),
    }
    if upstream_total > MAX_STATISTICS_ORDERS:
        # Amounts, average and byStatus cover the first 10,000 orders; `total` is the true count.
        stats["truncated"] = True
    return stats


def statistics_document(customer_id: UUID, crm: CrmFigures, orders: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_id": str(customer_id),
        "contacts": {"total": crm.contacts_total},
        "interactions": {
            "total": crm.interactions_total,
            "byType": crm.by_type,
            "firstInteractionDate": crm.first_interaction.isoformat() if crm.first_interaction else None,
            "lastInteractionDate": crm.last_interaction.isoformat() if crm.last_interaction else None,
        },
        "orders": orders,
    }
