"""The history the bench asks about: one customer with 10,000 entries and 10M entries in all.

`crm demo-data --history` writes a `created` entry for each record it loads (7.5M at 1M
customers); a bench database loaded without it, or one that needs more, is topped up here
with `updated` entries of customers by the demo data's users, spread over three years, so
the global history holds at least TARGET_ENTRIES. Done once per database: the rows stay.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

TARGET_ENTRIES = 10_000_000
BIG_CUSTOMER_ENTRIES = 10_000
_BIG = "bench-history-big"
_FILL = "bench-history-fill"
_BATCH = 1_000_000

# The customer the bench reads 10,000 entries of: its own updates, a minute apart.
_BIG_CUSTOMER = """
INSERT INTO history (entity, entity_id, customer_id, action, actor_user_id, actor_role, request_id, version, changes, at)
SELECT 'customer', c.id, c.id, 'updated', c.owner_id, 'manager', $2, g + 1,
       jsonb_build_object('notes', jsonb_build_object('old', 'note ' || g, 'new', 'note ' || (g + 1))),
       now() - make_interval(mins => g)
FROM (SELECT id, owner_id FROM customers ORDER BY id LIMIT 1) AS c, generate_series(1, $1) AS g
"""

# Status changes of customers drawn from a sample, by the users who log interactions.
_FILL_ROWS = """
WITH who AS (SELECT array_agg(user_id) AS users FROM interaction_user_counts),
     whom AS (SELECT array_agg(id) AS ids FROM (SELECT id FROM customers TABLESAMPLE SYSTEM (20) LIMIT 200000) s)
INSERT INTO history (entity, entity_id, customer_id, action, actor_user_id, actor_role, request_id, version, changes, at)
SELECT 'customer', whom.ids[1 + g % cardinality(whom.ids)], whom.ids[1 + g % cardinality(whom.ids)], 'updated',
       who.users[1 + (g / 7) % cardinality(who.users)], 'employee', $2, 2,
       '{"status": {"old": "lead", "new": "active"}}'::jsonb,
       now() - make_interval(secs => ((g * 9.4608) % (3 * 365 * 86400))::float8)
FROM who, whom, generate_series($3::bigint, $3::bigint + $1 - 1) AS g
"""


async def prepare(url: str, say: Callable[[str], None]) -> tuple[str, list[str]]:
    """The big customer's id and `userId=..&startDate=..&endDate=..` pieces of one user's week each."""
    conn = await asyncpg.connect(url)
    try:
        big = await conn.fetchval("SELECT customer_id FROM history WHERE request_id = $1 LIMIT 1", _BIG)
        if big is None:
            say(f"history: writing {BIG_CUSTOMER_ENTRIES:,} entries of one customer")
            await conn.execute(_BIG_CUSTOMER, BIG_CUSTOMER_ENTRIES, _BIG)
            big = await conn.fetchval("SELECT customer_id FROM history WHERE request_id = $1 LIMIT 1", _BIG)
        # An estimate is enough to decide; count(*) of 10M rows would cost seconds each run.
        total = int(await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE relname = 'history'"))
        if total < TARGET_ENTRIES:
            total = int(await conn.fetchval("SELECT count(*) FROM history"))
        start = 0
        while total < TARGET_ENTRIES:
            batch = min(_BATCH, TARGET_ENTRIES - total)
            say(f"history: {total:,} entries; adding {batch:,}")
            await conn.execute(_FILL_ROWS, batch, _FILL, start)
            start += batch
            total += batch
        await conn.execute("ANALYZE history")
        users = [
            r[0] for r in await conn.fetch("SELECT user_id FROM interaction_user_counts ORDER BY user_id LIMIT 10")
        ]
    finally:
        await conn.close()
    today = datetime.now(UTC).date()
    pieces = []
    for i, user in enumerate(users):
        week_start = today - timedelta(days=7 * (1 + 11 * i))
        end = week_start + timedelta(days=6)
        pieces.append(f"userId={user}&startDate={week_start.isoformat()}&endDate={end.isoformat()}")
    return str(big), pieces
