"""Many writers holding the same ETag: exactly one wins, the rest get 412, and the row is the winner's.

The services take the row lock before checking If-Match, so the writers queue on the lock and
each one after the first sees the winner's version. Each request's body differs, so the stored
row shows which one landed, and that it landed alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import assert_problem
from tests.safe_writes.support import CONTACTS, CUSTOMERS, INTERACTIONS, Headers, Kind


async def _race(client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any], kind: Kind, n: int) -> None:
    resource = await kind.make(client, admin)
    url = kind.url(resource)
    bodies = [{kind.field: f"writer {i}"} for i in range(n)]

    responses = await asyncio.gather(
        *(client.put(url, json=body, headers={**admin, "If-Match": '"1"'}) for body in bodies)
    )

    codes = [r.status_code for r in responses]
    assert sorted(codes) == [200] + [412] * (n - 1), codes
    winner = codes.index(200)
    assert responses[winner].json()[kind.field] == f"writer {winner}"
    assert responses[winner].headers["ETag"] == '"2"'
    for loser in (r for r in responses if r.status_code == 412):
        assert_problem(loser, 412)
        assert loser.headers["ETag"] == '"2"'
    assert await kind.row(db, resource) == {"version": 2, kind.field: f"writer {winner}"}


@pytest.mark.parametrize("kind", [CONTACTS, INTERACTIONS], ids=["contacts", "interactions"])
async def test_parallel_updates_with_one_tag(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any], kind: Kind
) -> None:
    await _race(client, admin, db, kind, 12)


async def test_fifty_customer_updates_with_one_tag(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    # Several fields per writer: the stored row must be one writer's body, never a mix.
    resource = await CUSTOMERS.make(client, admin)
    url = CUSTOMERS.url(resource)
    bodies = [
        {"first_name": f"First{i}", "last_name": f"Last{i}", "city": f"City{i}", "notes": f"n{i}"} for i in range(50)
    ]

    responses = await asyncio.gather(
        *(client.put(url, json=body, headers={**admin, "If-Match": '"1"'}) for body in bodies)
    )

    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, codes
    assert codes.count(412) == 49, codes
    winner = bodies[codes.index(200)]
    assert {k: responses[codes.index(200)].json()[k] for k in winner} == winner
    # The winner's answer and every 412 name the same new tag: a loser can reload and retry.
    assert all(r.headers["ETag"] == '"2"' for r in responses)
    for loser in (r for r in responses if r.status_code == 412):
        assert_problem(loser, 412)
    row = await db.fetchrow(
        "SELECT first_name, last_name, city, notes, version FROM customers WHERE id = $1::uuid", resource["id"]
    )
    assert row is not None
    assert dict(row) == {**winner, "version": 2}
