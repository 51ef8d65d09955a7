"""Applying order states to the projection: the only writer of both projection tables.

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
  a transaction-scoped advisory lock per customer it touches (in a fixed order) before writing
  the orders, so concurrent consumers and the sync cannot interleave a stale sum.

States are applied a batch at a time (`apply_states`): a handful of set-based statements for the
whole batch (read the stored owners, lock, insert the new orders, lock and update the known
ones, recompute each touched customer once) instead of five round trips per order: the live
consumer's speed is this function's.

Services only flush: the caller owns the transaction (and retries a deadlock, see `apply`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.orders.projection.models import NOT_COUNTED, CustomerOrderFigures

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


# unnest() yields the array in its order and nothing sorts after it, so the locks are taken in
# the order given (ascending keys: two transactions never wait for each other in a circle).
_LOCK = text("SELECT count(pg_advisory_xact_lock(:space, k)) FROM unnest(CAST(:keys AS integer[])) AS k")


async def _lock_customers(session: AsyncSession, customer_ids: Iterable[UUID], held: set[int]) -> None:
    keys = sorted({_lock_key(c) for c in customer_ids} - held)
    if keys:
        await session.execute(_LOCK, {"space": _LOCK_SPACE, "keys": keys})
        held.update(keys)


def _newer(a: OrderState, b: OrderState) -> bool:
    """Whether `a` wins over `b` (two states of one order), by the stored-state rule below."""
    if a.version is not None and b.version is not None:
        return a.version > b.version
    return a.updated_at > b.updated_at


def _latest(states: Iterable[OrderState]) -> dict[UUID, tuple[OrderState, set[UUID]]]:
    """Each order's winning state of the batch, and every customer its states named."""
    latest: dict[UUID, tuple[OrderState, set[UUID]]] = {}
    for state in states:
        found = latest.get(state.order_id)
        if found is None:
            latest[state.order_id] = (state, {state.customer_id})
            continue
        best, named = found
        named.add(state.customer_id)
        if _newer(state, best):
            latest[state.order_id] = (state, named)
    return latest


_COLUMNS = ("order_id", "customer_id", "status", "total_amount", "created_at", "updated_at", "version", "deleted")
_TYPES = ("uuid", "uuid", "text", "numeric", "timestamptz", "timestamptz", "integer", "boolean")
# The batch as one row set: one array per column, zipped by unnest.
_INCOMING = ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(_COLUMNS, _TYPES, strict=True))

_STORED = text("SELECT order_id, customer_id FROM order_projections WHERE order_id = ANY(CAST(:ids AS uuid[]))")

# A first state: the row is new, and belongs to a customer locked before. Waits for another
# transaction inserting the same order, then leaves its row to the update below.
_INSERT = text(
    f"""
    INSERT INTO order_projections ({", ".join(_COLUMNS)}, applied_at)
    SELECT s.*, now() FROM unnest({_INCOMING}) AS s({", ".join(_COLUMNS)})
    ORDER BY s.order_id
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id
    """  # noqa: S608 - built from the constant column names above
)

# The existing rows, locked (in one order, so two batches wait rather than deadlock on them),
# with their customer for certain: another transaction may have moved one since _STORED.
_LOCK_ROWS = text(
    """
    SELECT order_id, customer_id FROM order_projections
    WHERE order_id = ANY(CAST(:ids AS uuid[])) ORDER BY order_id FOR UPDATE
    """
)

# By version where both carry one, else by the order's updated_at.
_UPDATE = text(
    f"""
    UPDATE order_projections AS o SET
        customer_id = s.customer_id, status = s.status, total_amount = s.total_amount,
        created_at = s.created_at, updated_at = s.updated_at, version = s.version,
        deleted = s.deleted, applied_at = now()
    FROM unnest({_INCOMING}) AS s({", ".join(_COLUMNS)})
    WHERE o.order_id = s.order_id AND CASE
        WHEN s.version IS NOT NULL THEN
            (o.version IS NOT NULL AND o.version < s.version)
            OR (o.version IS NULL AND o.updated_at < s.updated_at)
        ELSE o.updated_at < s.updated_at
    END
    RETURNING o.order_id
    """  # noqa: S608 - built from the constant column names above
)

# Each customer's figures from its counted orders (the partial index holds exactly those).
_RECOMPUTE = text(
    f"""
    INSERT INTO customer_order_figures AS f
        (customer_id, total_orders, total_spent, first_order_date, last_order_date, orders_synced_at)
    SELECT c.id, count(o.order_id), coalesce(sum(o.total_amount), 0), min(o.created_at), max(o.created_at), now()
    FROM unnest(CAST(:customers AS uuid[])) AS c(id)
    LEFT JOIN order_projections AS o
        ON o.customer_id = c.id AND NOT o.deleted AND o.status NOT IN ({", ".join(repr(s) for s in NOT_COUNTED)})
    GROUP BY c.id
    ON CONFLICT (customer_id) DO UPDATE SET
        total_orders = excluded.total_orders, total_spent = excluded.total_spent,
        first_order_date = excluded.first_order_date, last_order_date = excluded.last_order_date,
        orders_synced_at = excluded.orders_synced_at
    """  # noqa: S608 - built from constants
)


def _arrays(states: list[OrderState]) -> dict[str, list[Any]]:
    return {c: [getattr(s, c) for s in states] for c in _COLUMNS}


async def apply_states(session: AsyncSession, states: Iterable[OrderState]) -> int:
    """Store each order's state if it is newer than what is stored of it; how many orders changed."""
    latest = _latest(states)
    if not latest:
        return 0
    ids = sorted(latest)
    stored: dict[UUID, UUID] = {r[0]: r[1] for r in await session.execute(_STORED, {"ids": ids})}
    held: set[int] = set()
    await _lock_customers(session, {c for _, named in latest.values() for c in named} | set(stored.values()), held)
    chosen = [latest[i][0] for i in ids]
    inserted = set((await session.execute(_INSERT, _arrays(chosen))).scalars().all())
    existing = [s for s in chosen if s.order_id not in inserted]
    current: dict[UUID, UUID] = {}
    updated: set[UUID] = set()
    if existing:
        rows = await session.execute(_LOCK_ROWS, {"ids": [s.order_id for s in existing]})
        current = {r[0]: r[1] for r in rows}
        # A customer this batch did not expect (the order moved, or another transaction inserted it
        # for another customer meanwhile): locked now, out of the fixed order, so a deadlock is
        # possible (`apply` retries it).
        await _lock_customers(session, current.values(), held)
        updated = set((await session.execute(_UPDATE, _arrays(existing))).scalars().all())
    touched: set[UUID] = set()
    for order_id in inserted | updated:
        touched |= latest[order_id][1]
        if order_id in current:
            touched.add(current[order_id])
    if touched:
        await session.execute(_RECOMPUTE, {"customers": sorted(touched)})
    return len(inserted) + len(updated)


def _is_deadlock(exc: DBAPIError) -> bool:
    # asyncpg's error is wrapped by SQLAlchemy's adapter; the original keeps the code.
    cause = getattr(exc.orig, "__cause__", None) or exc.orig
    return getattr(cause, "sqlstate", None) in {"40P01", "40001"}


# States per transaction for `apply` (the sync's pages): one statement set per batch.
BATCH = 500


async def apply(maker: async_sessionmaker[AsyncSession], states: Iterable[OrderState]) -> int:
    """Apply the states a batch per transaction (committed when this returns); the number of orders changed.

    A deadlock (possible only when an order moves customer mid-way) is retried.
    """
    pending = list(states)
    changed = 0
    for first in range(0, len(pending), BATCH):
        changed += await apply_batch(maker, pending[first : first + BATCH])
    return changed


async def apply_batch(maker: async_sessionmaker[AsyncSession], states: list[OrderState]) -> int:
    """`apply_states` in one transaction of its own, committed when this returns; deadlocks retried."""
    for attempt in range(_RETRIES):
        try:
            async with maker() as session, session.begin():
                return await apply_states(session, states)
        except DBAPIError as exc:
            if not _is_deadlock(exc) or attempt == _RETRIES - 1:
                raise
            log.info("order projection batch retried after a deadlock", states=len(states))
            await asyncio.sleep(0.01 * (attempt + 1) * (1 + random.random()))  # noqa: S311 - jitter
    raise AssertionError("unreachable")


async def figures_of(session: AsyncSession, customer_id: UUID) -> CustomerOrderFigures | None:
    figures: CustomerOrderFigures | None = await session.get(CustomerOrderFigures, customer_id)
    return figures
