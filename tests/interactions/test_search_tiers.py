"""Interaction search's bounded tiers give exactly what one statement over every row gives.

The bounds are set tiny, so a few hundred rows take every path: common values (key ranges
fuller than `cap`) walked newest first, walks that run out and collect every candidate, the
substring tier's two windows, and the trigram index for fragments rare among the newest.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from crm.common import tiers
from crm.interactions import queries, service
from crm.interactions.models import Interaction
from tests.helpers import create_customer
from tests.interactions.support import driver_statements

TINY = tiers.Bounds(cap=2, walk=6, first_window=1, second_window=3, typo_window=4, typo_candidates=5)

# From very common to unique, so that every tier meets values of every frequency.
SUBJECTS = [
    *["Quarterly review"] * 40,
    *["Invoice sent"] * 30,
    *["invoice"] * 12,
    *["Invoice sent twice"] * 6,
    *["Review call"] * 5,
    "Zebra crossing",
    "Budget",
]
DESCRIPTIONS = [None, None, "Discussed pricing", "Budget", "budget for the next quarter", "renewal"]


async def _load(db: asyncpg.Connection[Any], customer_id: str) -> None:
    rng = random.Random(10)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for _ in range(300):
        # Few distinct dates, so ties on date are common and id must break them.
        when = start + timedelta(days=rng.randrange(40))
        rows.append((uuid.UUID(customer_id), uuid.uuid4(), rng.choice(SUBJECTS), rng.choice(DESCRIPTIONS), when))
    # The rarest values only in the oldest rows: the newest-first walks cannot meet them.
    rows.append((uuid.UUID(customer_id), uuid.uuid4(), "Aardvark visit", "unique walrus", start - timedelta(days=9)))
    # And one also among the newest, so the walks find some but not all of a rare fragment's rows.
    rows.append((uuid.UUID(customer_id), uuid.uuid4(), "Late call", "another walrus", start + timedelta(days=50)))
    await db.executemany(
        "INSERT INTO interactions (customer_id, user_id, type, subject, description, date)"
        " VALUES ($1, $2, 'call', $3, $4, $5)",
        rows,
    )
    await db.execute("ANALYZE interactions")


QUERIES = [
    *("review", "quarterly review", "quart", "Quarterly", "invoice", "invoice sent", "INVOICE SENT TWICE"),
    *("sent", "budget", "for the", "renewal", "zebra", "aardvark", "walrus", "e", "zz", "100%"),
]


async def _every_row(session: AsyncSession, query: str, limit: int) -> list[uuid.UUID]:
    """The promised answer, by one statement that ranks and orders every row."""
    return await tiers.search_within(session, queries.SEARCH, query, limit, select(Interaction.id), {})


async def test_bounded_tiers_equal_one_statement_over_every_row(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    await _load(db, customer["id"])
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    with driver_statements() as seen:
        for bounds in (TINY, tiers.DEFAULT_BOUNDS):
            for query in QUERIES:
                for limit in (1, 3, 10, 100):
                    async with maker() as session:
                        want = await _every_row(session, query, limit)
                        got = await tiers.literal(session, queries.SEARCH, query, None, limit, bounds)
                    assert got == want, (bounds, query, limit)
    sql = [statement for statement, _ in seen]
    # Every path ran: the key ranges, the walks, and the trigram index for rare fragments.
    assert any("capped_0" in s for s in sql)
    assert any("walked" in s for s in sql)
    assert any("crm_interaction_search_text" in s and "walked" not in s and "own" not in s for s in sql)


async def test_common_and_rare_words_through_the_api(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    await _load(db, customer["id"])
    response = await client.get("/api/interactions/search", params={"query": "Walrus"}, headers=admin)
    assert [i["subject"] for i in response.json()] == ["Late call", "Aardvark visit"]
    response = await client.get("/api/interactions/search", params={"query": "review", "limit": "5"}, headers=admin)
    found = response.json()
    assert len(found) == 5
    # "Review call" starts with the word, so it outranks every "Quarterly review".
    assert {i["subject"] for i in found} == {"Review call"}
    dates = [(i["date"], i["id"]) for i in found]
    assert dates == sorted(dates, reverse=True)


async def test_typos_are_bounded_and_keep_their_order(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    await _load(db, customer["id"])
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with maker() as session:
        # Common neighbours: found among the newest rows, the closest first.
        near = await service.search_interactions(session, "Quartrely", None, 3, bounds=TINY)
        assert [i.subject for i, _ in near]
        assert all(i.subject == "Quarterly review" for i, _ in near)
    async with maker() as session:
        # A rare word's neighbours are not among the newest: the trigram index finds them.
        rare = await service.search_interactions(session, "Aardvrak", None, 3, bounds=TINY)
        assert [i.subject for i, _ in rare] == ["Aardvark visit"]
