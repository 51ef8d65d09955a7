"""Contact search's bounded tiers give exactly the promised order, on every path.

The promise: some field contains the query; exact matches, then prefix matches, each by the
matched value (lowered, bytewise; the smallest if several fields match), then the other name
for first/last-name matches, then id; then substring matches, newest first. The reference
below computes that in Python over every row (ASCII data, so Python's lower() and ordering
are PostgreSQL's); the bounds are tiny, so a few hundred rows take every path.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from crm.common import tiers
from crm.common.search import phone_digits
from crm.contacts import queries
from tests.helpers import create_customer
from tests.interactions.support import driver_statements

TINY = tiers.Bounds(cap=2, walk=6, first_window=1, second_window=3, typo_window=4, typo_candidates=5)

FIRST = [*["Olena"] * 20, *["Oleh"] * 10, *["Mark"] * 5, "Marko", "Markiyan", "Ivan", "Ivanna"]
LAST = [*["Kovalenko"] * 15, *["Kovalchuk"] * 5, "Petrenko", "Bondar", "Ivanenko", "Smith"]
POSITIONS = [None, "Accountant", "Chief Accountant", "Director", "Driver"]

Row = tuple[uuid.UUID, str, str, str | None, str | None, str | None, datetime]


async def _load(db: asyncpg.Connection[Any], customer_id: str) -> list[Row]:
    rng = random.Random(3)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[Row] = []
    for n in range(250):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}.{n}@example.org" if rng.random() < 0.8 else None
        phone = f"+380 67 {rng.randrange(10**7):07d}" if rng.random() < 0.7 else None
        when = start + timedelta(days=rng.randrange(30))  # ties on created_at are common
        rows.append((uuid.uuid4(), first, last, rng.choice(POSITIONS), email, phone, when))
    await db.executemany(
        "INSERT INTO contacts (id, customer_id, first_name, last_name, position, email, phone, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        [(r[0], uuid.UUID(customer_id), *r[1:]) for r in rows],
    )
    await db.execute("ANALYZE contacts")
    return rows


def _reference(rows: list[Row], query: str, limit: int) -> list[uuid.UUID]:
    q = query.lower()
    digits = phone_digits(query) or ""
    ranked: list[tuple[Any, ...]] = []
    substring: list[tuple[datetime, uuid.UUID]] = []
    for id_, first, last, position, email, phone, created in rows:
        f, la = first.lower(), last.lower()
        texts = [f, la, f"{f} {la}", f"{la} {f}", (email or "").lower(), (position or "").lower()]
        phone_digits_ = re.sub(r"\D", "", phone or "")
        has_phone = bool(digits) and phone is not None
        if not any(q in t for t in texts) and not (has_phone and digits in phone_digits_):
            continue
        # (tier, value, second) of each field that equals or starts with the query.
        keys: list[tuple[int, str, str]] = []
        for value, second in ((f, la), (la, f), ((email or "").lower(), ""), ((position or "").lower(), "")):
            if value.startswith(q):
                keys.append((0 if value == q else 1, value, second))
        if has_phone and phone_digits_.startswith(digits):
            keys.append((0 if phone_digits_ == digits else 1, phone_digits_, ""))
        full_names = (f"{f} {la}", f"{la} {f}") if " " in q else ()
        keys += [(0 if full == q else 1, full, "") for full in full_names if full.startswith(q)]
        if keys:
            ranked.append((*min(keys), id_))
        else:
            substring.append((created, id_))
    ranked.sort(key=lambda k: (k[0], k[1].encode(), k[2].encode(), k[3]))
    substring.sort(reverse=True)
    return ([k[3] for k in ranked] + [i for _, i in substring])[:limit]


QUERIES = [
    *("olena", "olen", "ole", "mark", "marko", "ivan", "kovalenko", "koval", "enko", "olena kovalenko"),
    *("kovalenko olena", "oleh kov", "accountant", "acc", "chief", "driver", "example", ".org", "0671"),
    *("+380 67", "380", "smith", "zz", "ko", "ne"),
]


async def test_bounded_tiers_give_the_promised_order(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    rows = await _load(db, customer["id"])
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    with driver_statements() as seen:
        for bounds in (TINY, tiers.DEFAULT_BOUNDS):
            for query in QUERIES:
                for limit in (1, 3, 10, 100):
                    async with maker() as session:
                        got = await tiers.literal(session, queries.SEARCH, query, None, limit, bounds)
                    assert got == _reference(rows, query, limit), (bounds, query, limit)
    sql = [statement for statement, _ in seen]
    assert any("walked" in s for s in sql)
    assert any("crm_contact_search_text" in s for s in sql)  # the trigram index, for rare fragments


async def test_one_customers_contacts_in_the_same_order(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    other = await create_customer(client, admin)
    rows = await _load(db, customer["id"])
    await _load(db, other["id"])  # the same names elsewhere, which the filter must leave out
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    for query in QUERIES:
        async with maker() as session:
            got = await tiers.literal(session, queries.SEARCH, query, uuid.UUID(customer["id"]), 10, TINY)
        assert got == _reference(rows, query, 10), query
