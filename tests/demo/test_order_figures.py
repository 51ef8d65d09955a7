"""`crm demo-data` fills the order projection: orders for a plausible share of its customers, and
every customer's figures equal to a direct sum over the loaded order rows (fast path into empty
tables, and a second load into tables that hold rows, where the customers' trigger runs)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from crm.demo.load import Plan, load

pytestmark = pytest.mark.slow

_DIRECT = """
    SELECT c.id,
           count(o.order_id) FILTER (WHERE NOT o.deleted AND o.status NOT IN ('cancelled', 'returned')) AS n,
           coalesce(sum(o.total_amount) FILTER (WHERE NOT o.deleted AND o.status NOT IN ('cancelled', 'returned')), 0)
               AS spent,
           min(o.created_at) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS first,
           max(o.created_at) FILTER (WHERE o.status NOT IN ('cancelled', 'returned')) AS last,
           count(o.order_id) AS any_orders
    FROM customers c LEFT JOIN order_projections o ON o.customer_id = c.id
    GROUP BY c.id
"""


async def _check(db: asyncpg.Connection[Any]) -> tuple[int, int]:
    """Every customer's figures row against the direct sum; (customers, customers with orders)."""
    figures = {r["customer_id"]: r for r in await db.fetch("SELECT * FROM customer_order_figures")}
    direct = await db.fetch(_DIRECT)
    assert len(figures) == len(direct)
    with_orders = 0
    for row in direct:
        got = figures[row["id"]]
        assert (got["total_orders"], got["total_spent"]) == (row["n"], row["spent"])
        assert (got["first_order_date"], got["last_order_date"]) == (row["first"], row["last"])
        # Synced where the "sync" saw orders; never synced where there were none.
        assert (got["orders_synced_at"] is not None) == (row["any_orders"] > 0)
        with_orders += row["n"] > 0
    return len(direct), with_orders


async def test_the_demo_data_fills_the_projection_consistently(
    database_url: str, db: asyncpg.Connection[Any], client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    plan = Plan(database_url, 3000, contacts_per_customer=1, interactions_per_customer=1, seed=5)
    await asyncio.to_thread(load, plan, workers=2, progress=lambda _: None, say=lambda _: None)
    customers, with_orders = await _check(db)
    assert customers == 3000
    assert 0.3 < with_orders / customers < 0.6
    assert await db.fetchval("SELECT count(*) FROM order_projections WHERE status = 'cancelled'") > 0
    # The answers show them: the biggest spender first, its figures as stored.
    body = (await client.get("/api/customers", params={"sortBy": "total_spent", "limit": 1}, headers=admin)).json()
    top = body["customers"][0]
    stored = await db.fetchval("SELECT max(total_spent) FROM customer_order_figures")
    assert Decimal(top["total_spent"]) == stored
    assert top["total_orders"] > 0
    assert top["average_order_value"] is not None

    # Into tables that hold rows now: the trigger runs and must keep the loaded figures.
    more = Plan(database_url, 500, contacts_per_customer=0, interactions_per_customer=0, seed=6)
    await asyncio.to_thread(load, more, workers=1, progress=lambda _: None, say=lambda _: None)
    customers, _ = await _check(db)
    assert customers == 3500
