"""Read statements over the projection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.orders.projection.models import CustomerOrderFigures, OrderProjection


@dataclass(frozen=True, slots=True)
class ProjectedOrders:
    """A customer's stored orders in the statistics' terms (every status, as the live figures count them)."""

    as_of: datetime
    total: int
    total_amount: Decimal
    last_order_date: datetime | None
    by_status: dict[str, int]


async def projected_orders(session: AsyncSession, customer_id: UUID) -> ProjectedOrders | None:
    """None until the projection has synced that customer (it has a figures row)."""
    synced_at = await session.scalar(
        select(CustomerOrderFigures.orders_synced_at).where(CustomerOrderFigures.customer_id == customer_id)
    )
    if synced_at is None:
        return None
    rows = (
        await session.execute(
            select(
                OrderProjection.status,
                func.count(),
                func.coalesce(func.sum(OrderProjection.total_amount), 0),
                func.max(OrderProjection.created_at),
            )
            .where(OrderProjection.customer_id == customer_id, OrderProjection.deleted.is_(False))
            .group_by(OrderProjection.status)
        )
    ).all()
    by_status = {str(status): int(count) for status, count, _, _ in rows}
    lasts = [last for *_, last in rows if last is not None]
    return ProjectedOrders(
        as_of=synced_at,
        total=sum(by_status.values()),
        total_amount=sum((Decimal(amount) for _, _, amount, _ in rows), Decimal(0)),
        last_order_date=max(lasts) if lasts else None,
        by_status=by_status,
    )
