"""`crm orders sync`: bring the projection up to date from the Order Service's list of all orders.

Pages through `GET /api/orders` (every customer) newest `updated_at` first and applies each
order's state (crm.orders.projection.service: a listed state, which carries no version, wins
only over an older `updated_at`). Safe beside the live consumer, and idempotent: what is
already stored is not newer-than itself, so a rerun changes nothing.

Why newest first: the list is paged by offset, and an order that changes while we page moves
to the front; walking from the front, that only repeats an order on the next page, where
walking from the back would skip one. The change itself arrives as an event anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.orders.client import OrderQuery, OrderServiceClient
from crm.orders.projection.service import OrderState, apply
from crm.orders.schemas import MAX_ORDERS_PER_PAGE, Order

# Far more than any Order Service pages through; only stops an answer that never ends.
_MAX_PAGES = 1_000_000


@dataclass(slots=True)
class SyncResult:
    seen: int = 0
    changed: int = 0
    pages: int = 0


def listed_state(order: Order) -> OrderState:
    return OrderState(
        order_id=order.id,
        customer_id=order.customer_id,
        status=order.status.value,
        total_amount=order.total_amount,
        created_at=order.created_at,
        updated_at=order.updated_at or order.created_at,
        version=None,
    )


async def sync_orders(
    maker: async_sessionmaker[AsyncSession],
    client: OrderServiceClient,
    headers: dict[str, str],
    *,
    since: datetime | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> SyncResult:
    """Apply every listed order (updated at or after `since`); `progress(done, total)` after each page."""
    result = SyncResult()
    page = 1
    while page <= _MAX_PAGES:
        query = OrderQuery(page=page, limit=MAX_ORDERS_PER_PAGE, sort_by="updated_at", sort_order="DESC")
        # No database connection is held while waiting for the Order Service.
        answer = await client.list_orders(None, query, headers=headers)
        result.pages += 1
        states = [listed_state(o) for o in answer.orders]
        fresh = [s for s in states if since is None or s.updated_at >= since]
        result.changed += await apply(maker, fresh)
        result.seen += len(fresh)
        progress(result.seen, answer.pagination.total)
        if len(fresh) < len(states) or not answer.pagination.has_next or not answer.orders:
            break
        page += 1
    return result
