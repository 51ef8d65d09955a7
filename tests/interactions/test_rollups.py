"""Statistics read from the trigger-maintained roll-ups must equal a direct count, always.

Interactions are written through the API (so the triggers run), concurrently, then edited
and deleted; every answer is compared with a GROUP BY over the interactions table itself,
for ranges that cut days in the middle, start or end at midnight, or have no bound.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.helpers import TokenFactory, create_customer
from tests.interactions.support import create_interaction

TYPES = ["call", "email", "meeting", "note", "task"]
BASE = datetime(2025, 3, 1, tzinfo=UTC)


async def _truth(
    db: asyncpg.Connection[Any], start: datetime | None, end: datetime | None, user: uuid.UUID | None
) -> dict[str, Any]:
    rows = await db.fetch(
        """
        SELECT type, to_char(date AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, user_id::text AS user_id, count(*) AS n
        FROM interactions
        WHERE ($1::timestamptz IS NULL OR date >= $1) AND ($2::timestamptz IS NULL OR date < $2)
          AND ($3::uuid IS NULL OR user_id = $3)
        GROUP BY 1, 2, 3
        """,
        start,
        end,
        user,
    )
    by_type = dict.fromkeys(TYPES, 0)
    by_date: dict[str, int] = {}
    by_user: dict[str, int] = {}
    for r in rows:
        by_type[r["type"]] += r["n"]
        by_date[r["day"]] = by_date.get(r["day"], 0) + r["n"]
        by_user[r["user_id"]] = by_user.get(r["user_id"], 0) + r["n"]
    return {"total": sum(by_type.values()), "byType": by_type, "byDate": by_date, "byUser": by_user}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_rollup_statistics_equal_a_direct_count(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    rng = random.Random(7)
    users = [uuid.uuid4() for _ in range(3)]
    headers = {u: tokens.headers("employee", user_id=u) for u in users}
    customer = await create_customer(client, admin)
    created = await asyncio.gather(
        *(
            create_interaction(
                client,
                headers[users[i % 3]],
                customer["id"],
                type=TYPES[i % 5],
                date=_iso(BASE + timedelta(hours=rng.randrange(0, 24 * 6), minutes=rng.randrange(60))),
            )
            for i in range(60)
        )
    )
    # Edits that move interactions between days and types, and deletes, also concurrently.
    await asyncio.gather(
        *(
            client.put(
                f"/api/interactions/{c['id']}",
                json={"date": _iso(BASE + timedelta(days=rng.randrange(7), hours=5)), "type": "task"},
                headers=admin,
            )
            for c in created[:12]
        ),
        *(client.delete(f"/api/interactions/{c['id']}", headers=admin) for c in created[12:20]),
    )

    ranges: list[tuple[datetime | None, datetime | None]] = [(None, None)]
    for _ in range(12):
        a = BASE + timedelta(hours=rng.randrange(-12, 24 * 7), minutes=rng.choice([0, 17]))
        b = a + timedelta(hours=rng.randrange(1, 24 * 4))
        ranges += [(a, b), (a, None), (None, b)]
    ranges += [(BASE + timedelta(days=1), BASE + timedelta(days=3))]  # whole days only
    for start, end in ranges:
        for user in (None, users[0]):
            params = {}
            if start is not None:
                params["startDate"] = _iso(start)
            if end is not None:
                # The API's explicit end is inclusive; ask for the instant just before `end`.
                params["endDate"] = _iso(end - timedelta(microseconds=1))
            if user is not None:
                params["userId"] = str(user)
            response = await client.get("/api/interactions/statistics", params=params, headers=admin)
            assert response.status_code == 200, response.text
            assert response.json() == await _truth(db, start, end, user), params
