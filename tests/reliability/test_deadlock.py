"""A write that PostgreSQL rolls back to break a deadlock is answered 503 + Retry-After (the
client may send it again as it is), not 500, and nothing of it is stored."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem, create_customer
from tests.interactions.support import create_interaction
from tests.reliability.support import wait_for_lock_waiters

JANUARY, FEBRUARY = "2025-01-15T10:00:00Z", "2025-02-15T10:00:00Z"


async def test_the_deadlock_victim_is_told_to_retry(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], database_url: str
) -> None:
    customer = await create_customer(client, admin)
    moved = await create_interaction(client, admin, customer["id"], date=JANUARY)
    await create_interaction(client, admin, customer["id"], date=FEBRUARY)

    # Another writer holds February's statistics row. Moving the interaction from January to
    # February locks January's row, then waits for February's; when the other writer then asks
    # for January's, the request (waiting longer) is the one PostgreSQL rolls back.
    other = await asyncpg.connect(database_url)
    try:
        other_tx = other.transaction()
        await other_tx.start()
        await other.execute("SELECT 1 FROM interaction_month_days WHERE month = '2025-02-01' FOR UPDATE")
        move = asyncio.create_task(
            client.put(f"/api/interactions/{moved['id']}", json={"date": FEBRUARY}, headers=admin)
        )
        await wait_for_lock_waiters(db, 1)
        await asyncio.wait_for(
            other.execute("SELECT 1 FROM interaction_month_days WHERE month = '2025-01-01' FOR UPDATE"), timeout=10
        )
        response = await asyncio.wait_for(move, timeout=10)
        await other_tx.rollback()
    finally:
        await other.close()

    body = assert_problem(response, 503)
    assert body["type"] == "urn:crm:problem:retry"
    assert response.headers["Retry-After"] == "1"
    stored = await client.get(f"/api/interactions/{moved['id']}", headers=admin)
    assert stored.json()["date"].startswith("2025-01-15")
    # Sent again, as the answer invites, it goes through.
    again = await client.put(f"/api/interactions/{moved['id']}", json={"date": FEBRUARY}, headers=admin)
    assert again.status_code == 200, again.text
