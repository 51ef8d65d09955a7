"""The date-range list's total comes from the roll-ups and must equal a direct count, always."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.helpers import create_customer

TYPES = ["call", "email", "meeting", "note", "task"]
BASE = datetime(2025, 3, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_range_totals_equal_a_direct_count(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    rng = random.Random(11)
    users = [uuid.uuid4() for _ in range(3)]
    customers = [uuid.UUID((await create_customer(client, admin))["id"]) for _ in range(2)]
    # Inserted by SQL: the triggers keep the roll-ups as for any write.
    await db.executemany(
        "INSERT INTO interactions (customer_id, user_id, type, subject, date) VALUES ($1, $2, $3, 'x', $4)",
        [
            (
                rng.choice(customers),
                rng.choice(users),
                rng.choice(TYPES),
                BASE + timedelta(minutes=rng.randrange(60 * 24 * 20)),
            )
            for _ in range(400)
        ],
    )
    await db.execute("DELETE FROM interactions WHERE ctid IN (SELECT ctid FROM interactions LIMIT 25)")
    await db.execute("UPDATE interactions SET type = 'note' WHERE ctid IN (SELECT ctid FROM interactions LIMIT 25)")

    ranges: list[tuple[datetime | None, datetime | None]] = [
        (None, None),
        (BASE + timedelta(days=2), None),
        (None, BASE + timedelta(days=5, hours=7)),
        (BASE + timedelta(days=1), BASE + timedelta(days=9)),  # whole days only
        (BASE + timedelta(days=1, hours=3), BASE + timedelta(days=9, hours=20)),  # edges on both sides
        (BASE + timedelta(days=3, hours=1), BASE + timedelta(days=3, hours=5)),  # inside one day
    ]
    for start, end in ranges:
        for type_ in (None, "email"):
            for user in (None, users[0]):
                for customer in (None, customers[1]):
                    params = {"limit": "1"}
                    if start is not None:
                        params["startDate"] = _iso(start)
                    if end is not None:
                        params["endDate"] = _iso(end)  # inclusive
                    if type_ is not None:
                        params["type"] = type_
                    if user is not None:
                        params["userId"] = str(user)
                    if customer is not None:
                        params["customerId"] = str(customer)
                    response = await client.get("/api/interactions/date-range", params=params, headers=admin)
                    assert response.status_code == 200, response.text
                    truth = await db.fetchval(
                        "SELECT count(*) FROM interactions WHERE ($1::timestamptz IS NULL OR date >= $1)"
                        " AND ($2::timestamptz IS NULL OR date <= $2) AND ($3::text IS NULL OR type = $3)"
                        " AND ($4::uuid IS NULL OR user_id = $4) AND ($5::uuid IS NULL OR customer_id = $5)",
                        start,
                        end,
                        type_,
                        user,
                        customer,
                    )
                    assert response.json()["pagination"]["total"] == truth, params
