"""`crm demo-data`'s bulk load into empty tables: it drops the secondary indexes and foreign
keys, COPYs from several processes, builds the indexes back several at once, and rebuilds
the roll-ups that its trigger-less writes left stale."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from crm.demo.load import CHUNK, Plan, load

pytestmark = pytest.mark.slow


async def _schema(db: asyncpg.Connection[Any]) -> set[tuple[str, str, str]]:
    """Every index and constraint of the schema, as the database describes it."""
    indexes = await db.fetch("SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
    constraints = await db.fetch(
        "SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = current_schema()::regnamespace"
    )
    return {(r[0], r[1], r[2]) for r in [*indexes, *constraints]}


async def test_a_bulk_load_puts_every_index_and_constraint_back_and_the_roll_ups_match(
    database_url: str, db: asyncpg.Connection[Any], client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    before = await _schema(db)
    # More than one chunk, so that both processes copy and the builds have rows to sort.
    plan = Plan(database_url, CHUNK + 700, contacts_per_customer=1.5, interactions_per_customer=3, seed=7, history=True)
    said: list[str] = []
    await asyncio.to_thread(load, plan, workers=2, progress=lambda _: None, say=said.append)

    assert any("dropping foreign keys and secondary indexes" in line for line in said), said
    assert await _schema(db) == before
    assert await db.fetchval("SELECT count(*) FROM pg_index i WHERE NOT (i.indisvalid AND i.indisready)") == 0
    assert await db.fetchval("SELECT count(*) FROM customers") == plan.customers
    orphans = await db.fetchval(
        "SELECT count(*) FROM interactions i LEFT JOIN customers c ON c.id = i.customer_id WHERE c.id IS NULL"
    )
    assert orphans == 0
    # Each loaded record has its `created` entry, as one written through the API would.
    entries = {r["entity"]: r["n"] for r in await db.fetch("SELECT entity, count(*) AS n FROM history GROUP BY 1")}
    assert entries == {
        "customer": plan.customers,
        "contact": await db.fetchval("SELECT count(*) FROM contacts"),
        "interaction": await db.fetchval("SELECT count(*) FROM interactions"),
    }
    mismatched = await db.fetchval(
        """
        SELECT count(*) FROM customers c JOIN history h ON h.entity_id = c.id
        WHERE h.action <> 'created' OR h.at <> c.created_at OR h.customer_id <> c.id
           OR h.changes -> 'email' ->> 'new' <> c.email OR h.actor_user_id <> c.owner_id
        """
    )
    assert mismatched == 0

    segments = (await client.get("/api/customers/segments", headers=admin)).json()
    by_status = {r["status"]: r["n"] for r in await db.fetch("SELECT status, count(*) AS n FROM customers GROUP BY 1")}
    assert segments["total"] == plan.customers
    assert {k: v for k, v in segments["byStatus"].items() if v} == by_status
    assert set(by_status) == set(segments["byStatus"])  # every status, pending included, has customers
    statistics = (await client.get("/api/interactions/statistics", headers=admin)).json()
    by_type = {r["type"]: r["n"] for r in await db.fetch("SELECT type, count(*) AS n FROM interactions GROUP BY 1")}
    assert statistics["total"] == sum(by_type.values()) > 0
    assert {k: v for k, v in statistics["byType"].items() if v} == by_type
    # The typo tier's dictionary holds exactly the loaded customers' words.
    words = {r["word"] for r in await db.fetch("SELECT word FROM customer_words")}
    expected = {
        r["word"]
        for r in await db.fetch(
            "SELECT DISTINCT w AS word FROM customers, crm_customer_words(first_name, last_name, email, company_name) w"
        )
    }
    assert words == expected
    assert words


async def test_a_load_into_tables_that_hold_rows_keeps_every_index_and_trigger_in_place(
    database_url: str, db: asyncpg.Connection[Any], client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await asyncio.to_thread(load, Plan(database_url, 50, 1.5, 3, seed=1), workers=1, progress=lambda _: None, say=print)
    before = await _schema(db)
    said: list[str] = []
    await asyncio.to_thread(
        load, Plan(database_url, 50, 1.5, 3, seed=2), workers=2, progress=lambda _: None, say=said.append
    )

    assert any("not empty" in line for line in said), said
    assert await _schema(db) == before
    segments = (await client.get("/api/customers/segments", headers=admin)).json()
    assert segments["total"] == 100  # the triggers counted the second load's rows as they came
    # Without --history, no entries: the load stays within its time budget.
    assert await db.fetchval("SELECT count(*) FROM history") == 0
