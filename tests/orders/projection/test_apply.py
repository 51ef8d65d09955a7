"""The projection's one writer: latest version wins, duplicates and late events change nothing."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from crm.config import Settings
from crm.orders.projection.service import OrderState, apply
from tests.orders.projection.helpers import expected_figures, nonzero, sessionmaker_for, stored_figures

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(
    order: uuid.UUID,
    customer: uuid.UUID,
    version: int | None,
    status: str = "new",
    amount: str = "10.00",
    minutes: int | None = None,
    *,
    deleted: bool = False,
) -> OrderState:
    return OrderState(
        order_id=order,
        customer_id=customer,
        status=status,
        total_amount=Decimal(amount),
        created_at=T0,
        updated_at=T0 + timedelta(minutes=minutes if minutes is not None else (version or 0)),
        version=version,
        deleted=deleted,
    )


async def figures_row(db: asyncpg.Connection[Any], customer: uuid.UUID) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM customer_order_figures WHERE customer_id = $1", customer)


async def test_latest_version_wins_whatever_the_arrival_order(
    settings: Settings, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    order, customer = uuid.uuid4(), uuid.uuid4()
    history = [
        state(order, customer, 1, "new", "10.00"),
        state(order, customer, 2, "processing", "12.50"),
        state(order, customer, 3, "shipped", "12.50"),
        state(order, customer, 4, "cancelled", "12.50"),
        state(order, customer, 5, "delivered", "99.99"),
    ]
    async with sessionmaker_for(settings, database_url) as maker:
        rng = random.Random(7)
        for _ in range(5):
            shuffled = history * 2
            rng.shuffle(shuffled)
            await apply(maker, shuffled)
            row = await figures_row(db, customer)
            assert row is not None
            assert (row["total_orders"], row["total_spent"]) == (1, Decimal("99.99"))
        # Everything again, duplicates included: nothing changes, not even the timestamps.
        before = await db.fetch("SELECT * FROM order_projections")
        before_figures = await figures_row(db, customer)
        assert await apply(maker, history * 3) == 0
        assert await db.fetch("SELECT * FROM order_projections") == before
        assert await figures_row(db, customer) == before_figures


async def test_cancelled_returned_and_deleted_orders_do_not_count(
    settings: Settings, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    customer = uuid.uuid4()
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    async with sessionmaker_for(settings, database_url) as maker:
        await apply(
            maker,
            [
                state(a, customer, 1, "delivered", "100.10"),
                state(b, customer, 1, "cancelled", "5.00"),
                state(c, customer, 1, "returned", "7.00"),
                state(d, customer, 1, "shipped", "0.20"),
            ],
        )
        row = await figures_row(db, customer)
        assert row is not None
        assert (row["total_orders"], row["total_spent"]) == (2, Decimal("100.30"))
        await apply(maker, [state(d, customer, 2, "shipped", "0.20", deleted=True)])
        # A late, older event of the deleted order does not bring it back.
        await apply(maker, [state(d, customer, 1, "shipped", "0.20")])
        row = await figures_row(db, customer)
        assert row is not None
        assert (row["total_orders"], row["total_spent"]) == (1, Decimal("100.10"))


async def test_an_order_moved_to_another_customer_leaves_the_first(
    settings: Settings, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    order, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with sessionmaker_for(settings, database_url) as maker:
        await apply(maker, [state(order, first, 1, "new", "40.00"), state(order, second, 2, "new", "40.00")])
        # The older event, late: it must not move the order back.
        await apply(maker, [state(order, first, 1, "new", "40.00")])
    one, two = await figures_row(db, first), await figures_row(db, second)
    assert one is not None
    assert two is not None
    assert (one["total_orders"], one["total_spent"]) == (0, Decimal("0.00"))
    assert (two["total_orders"], two["total_spent"]) == (1, Decimal("40.00"))


async def test_listed_states_without_version_are_ordered_by_updated_at(
    settings: Settings, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    order, customer = uuid.uuid4(), uuid.uuid4()
    async with sessionmaker_for(settings, database_url) as maker:
        await apply(maker, [state(order, customer, 3, "delivered", "30.00", minutes=30)])
        # A list page read before that change (older updated_at) changes nothing ...
        assert await apply(maker, [state(order, customer, None, "new", "1.00", minutes=10)]) == 0
        # ... the same state as the event changes nothing ...
        assert await apply(maker, [state(order, customer, None, "delivered", "30.00", minutes=30)]) == 0
        # ... a newer one wins, and then only a newer event beats it.
        assert await apply(maker, [state(order, customer, None, "returned", "30.00", minutes=40)]) == 1
        assert await apply(maker, [state(order, customer, 4, "delivered", "30.00", minutes=35)]) == 0
        assert await apply(maker, [state(order, customer, 5, "delivered", "31.00", minutes=50)]) == 1
    row = await figures_row(db, customer)
    assert row is not None
    assert (row["total_orders"], row["total_spent"]) == (1, Decimal("31.00"))


async def test_concurrent_writers_keep_every_figure_exact(
    settings: Settings, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    """Eight writers, three customers, orders moving between them: the figures equal a direct sum."""
    rng = random.Random(11)
    customers = [uuid.uuid4() for _ in range(3)]
    final: dict[uuid.UUID, dict[str, Any]] = {}
    events: list[OrderState] = []
    for _ in range(40):
        order = uuid.uuid4()
        for version in range(1, rng.randint(2, 6)):
            status = rng.choice(["new", "shipped", "delivered", "cancelled", "returned"])
            amount = f"{rng.randrange(1, 100_000) / 100:.2f}"
            customer = rng.choice(customers)
            events.append(state(order, customer, version, status, amount))
            final[order] = {"customer_id": customer, "status": status, "total_amount": amount}
    rng.shuffle(events)
    async with sessionmaker_for(settings.model_copy(update={"db_pool_size": 8}), database_url) as maker:
        await asyncio.gather(*(apply(maker, events[i::8]) for i in range(8)))
    assert nonzero(await stored_figures(db)) == nonzero(expected_figures(final.values()))


async def test_first_states_of_one_order_at_two_customers_at_once(
    settings: Settings, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    """Both transactions find no row; the later one moves it: the first customer must lose it again."""
    first, second = uuid.uuid4(), uuid.uuid4()
    final: list[dict[str, Any]] = []
    async with sessionmaker_for(settings.model_copy(update={"db_pool_size": 8}), database_url) as maker:
        for _ in range(60):
            order = uuid.uuid4()
            await asyncio.gather(
                apply(maker, [state(order, first, 1, "new", "1.00")]),
                apply(maker, [state(order, second, 2, "new", "1.00")]),
            )
            final.append({"customer_id": second, "status": "new", "total_amount": "1.00"})
    assert nonzero(await stored_figures(db)) == nonzero(expected_figures(final))
