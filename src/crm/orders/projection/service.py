"""Applying one order state to the projection: the only writer of both projection tables.

Rules (what the consumer and the sync rely on):
- each order's latest state wins: by `version` when both the stored and the incoming state
  carry one (events do), else by the order's `updated_at` (the Order Service's list carries
  no version); a state that is not newer changes nothing, so duplicates and late older events
  are no-ops, and applying the same states again in any order gives the same tables;
- a customer's figures are recomputed from that customer's counted orders (every order but
  cancelled, returned and deleted ones) each time one of them changes, never adjusted by
  deltas, so they always equal a direct sum over the stored orders; an order that moved
  to another customer recomputes both;
- the figures of one customer are changed by one transaction at a time: each application takes
  a transaction-scoped advisory lock per customer it touches (in a fixed order) before reading
  the order, so concurrent consumers and the sync cannot interleave a stale sum.

Services only flush: the caller owns the transaction (and retries a deadlock, see `apply`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import structlog
from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.orders.projection.models import NOT_COUNTED, CustomerOrderFigures, OrderProjection

log = structlog.get_logger("crm.orders.projection")

# The lock space of these advisory locks (first argument of the two-key form), so they never
# meet another feature's advisory locks on the same numbers.
_LOCK_SPACE = 0x0D3E
_RETRIES = 5


@dataclass(frozen=True, slots=True)
class OrderState:
    """One state of an order, as an event or the Order Service's list told it."""

    order_id: UUID
    customer_id: UUID
    status: str | None
    total_amount: Decimal
    created_at: datetime | None
    updated_at: datetime
    version: int | None = None
    deleted: bool = False


def _lock_key(customer_id: UUID) -> int:
    # A 32-bit key from the id; two customers sharing one only wait for each other.
    return int.from_bytes(customer_id.bytes[:4], "big", signed=True)


async def _lock_customers(session: AsyncSession, customer_ids: Iterable[UUID]) -> None:
    for key in sorted({_lock_key(c) for c in customer_ids}):
        await session.execute(select(func.pg_advisory_xact_lock(_LOCK_SPACE, key)))


async def apply_order_state(session: AsyncSession, state: OrderState) -> bool:
    """Store `state` if it is newer than what is stored of that order; True when it changed anything."""
    stored = await session.scalar(select(OrderProjection.customer_id).where(OrderProjection.order_id == state.order_id))
    locked = {state.customer_id} | ({stored} if stored else set())
    await _lock_customers(session, locked)
    values = {
        "customer_id": state.customer_id,
        "status": state.status,
        "total_amount": state.total_amount,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "version": state.version,
        "deleted": state.deleted,
        "applied_at": func.now(),
    }
    # A first state: the row is new, and belongs to the customer locked above. (Waits for another
    # transaction inserting the same order, then finds its row.)
    inserted = await session.scalar(
        insert(OrderProjection)
        .values(order_id=state.order_id, **values)
        .on_conflict_do_nothing(index_elements=[OrderProjection.order_id])
        .returning(literal(1))
    )
    if inserted is not None:
        await _recompute(session, state.customer_id)
        return True
    # The row exists: lock it, and learn its customer for certain. Another transaction may have
    # moved it since the read above, or inserted it meanwhile for another customer; then lock
    # that customer too (out of the fixed order, so a deadlock is possible: `apply` retries it).
    current = (
        await session.execute(
            select(OrderProjection.customer_id).where(OrderProjection.order_id == state.order_id).with_for_update()
        )
    ).scalar_one()
    if current not in locked:
        await _lock_customers(session, [current])
    row = OrderProjection.__table__.c
    # By version where both carry one, else by the order's updated_at.
    newer = (
        or_(
            and_(row.version.is_not(None), row.version < state.version),
            and_(row.version.is_(None), row.updated_at < state.updated_at),
        )
        if state.version is not None
        else row.updated_at < state.updated_at
    )
    changed = await session.scalar(
        update(OrderProjection)
        .where(OrderProjection.order_id == state.order_id, newer)
        .values(**values)
        .returning(literal(1))
    )
    if changed is None:
        return False
    for customer_id in {state.customer_id, current}:
        await _recompute(session, customer_id)
    return True


async def _recompute(session: AsyncSession, customer_id: UUID) -> None:
    counted = select(
        literal(customer_id).label("customer_id"),
        func.count().label("total_orders"),
        func.coalesce(func.sum(OrderProjection.total_amount), 0).label("total_spent"),
        func.min(OrderProjection.created_at).label("first_order_date"),
        func.max(OrderProjection.created_at).label("last_order_date"),
        func.now().label("orders_synced_at"),
    ).where(
        OrderProjection.customer_id == customer_id,
        OrderProjection.deleted.is_(False),
        OrderProjection.status.not_in(NOT_COUNTED),
    )
    statement = insert(CustomerOrderFigures).from_select(
        ["customer_id", "total_orders", "total_spent", "first_order_date", "last_order_date", "orders_synced_at"],
        counted,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[CustomerOrderFigures.customer_id],
        set_={
            c: getattr(statement.excluded, c)
            for c in ("total_orders", "total_spent", "first_order_date", "last_order_date", "orders_synced_at")
        },
    )
    await session.execute(statement)


def _is_deadlock(exc: DBAPIError) -> bool:
    # asyncpg's error is wrapped by SQLAlchemy's adapter; the original keeps the code.
    cause = getattr(exc.orig, "__cause__", None) or exc.orig
    return getattr(cause, "sqlstate", None) in {"40P01", "40001"}


async def apply(maker: async_sessionmaker[AsyncSession], states: Iterable[OrderState]) -> int:
    """Apply each state in a transaction of its own (committed when this returns); the number that changed.

    One order per transaction keeps every transaction at one order lock, and a deadlock (possible
    only when an order moves customer mid-way) is retried.
    """
    changed = 0
    for state in states:
        for attempt in range(_RETRIES):
            try:
                async with maker() as session, session.begin():
                    changed += await apply_order_state(session, state)
                break
            except DBAPIError as exc:
                if not _is_deadlock(exc) or attempt == _RETRIES - 1:
                    raise
                log.info("order projection retried after a deadlock", order_id=str(state.order_id))
                await asyncio.sleep(0.01 * (attempt + 1))
    return changed


async def figures_of(session: AsyncSession, customer_id: UUID) -> CustomerOrderFigures | None:
    figures: CustomerOrderFigures | None = await session.get(CustomerOrderFigures, customer_id)
    return figures
