"""Idempotency-Key under concurrency and across app instances: never two records for one key."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from crm.config import Settings
from crm.main import create_app
from tests.helpers import TokenFactory, assert_problem, create_customer, customer_body
from tests.safe_writes.support import ENDPOINT_IDS, ENDPOINTS, Endpoint, Headers, keyed, stored_keys

# The session holding an advisory lock of this database is blocked by us (the `db` connection).
_KEY_HOLDER_WAITS_ON_US = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND pg_backend_pid() = ANY(pg_blocking_pids(pid))
"""


async def _until(db: asyncpg.Connection[Any], sql: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await db.fetchval(sql):
        assert time.monotonic() < deadline, f"not reached within {within} s: {sql}"
        await asyncio.sleep(0.01)


async def test_second_request_while_the_first_runs_is_409(
    client: httpx.AsyncClient, admin: Headers, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    body = {"customer_id": customer["id"], "first_name": "Slow", "last_name": "Poke"}
    url = "/api/contacts"

    # Creating a contact locks its customer's row: hold that lock so the first request waits,
    # inside its transaction, holding the key.
    hold = db.transaction()
    await hold.start()
    try:
        await db.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", uuid.UUID(customer["id"]))
        first = asyncio.create_task(client.post(url, json=body, headers=keyed(admin, "slow-1")))
        await _until(db, _KEY_HOLDER_WAITS_ON_US)

        duplicate = await client.post(url, json=body, headers=keyed(admin, "slow-1"))
        changed = await client.post(url, json={**body, "last_name": "Other"}, headers=keyed(admin, "slow-1"))
        # Another user's identical key is another key: not blocked by the first request's.
        other_id = uuid.uuid4()
        other_user = tokens.headers("admin", user_id=other_id)
        unrelated = await client.post(
            "/api/customers", json=customer_body(), headers=keyed(other_user, "slow-1"), timeout=5
        )

        assert not first.done()
        for response in (duplicate, changed):
            problem = assert_problem(response, 409)
            assert "Idempotency-Key" in problem["detail"]
            assert "in progress" in problem["detail"]
        assert unrelated.status_code == 201, unrelated.text
        # The first request's key commits with its record, not before it: only the other user's is there.
        assert await db.fetchval("SELECT array_agg(user_id) FROM idempotency_keys") == [other_id]
        assert await db.fetchval("SELECT count(*) FROM contacts") == 0
    finally:
        await hold.rollback()

    created = await asyncio.wait_for(first, 10)
    assert created.status_code == 201, created.text
    replay = await client.post(url, json=body, headers=keyed(admin, "slow-1"))
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == created.content
    assert await db.fetchval("SELECT count(*) FROM contacts") == 1
    assert await stored_keys(db) == 2  # the first request's and the other user's


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
async def test_twenty_parallel_posts_with_one_key_make_one_record(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any], endpoint: Endpoint
) -> None:
    body = await endpoint.body(client, admin)
    before = await endpoint.count(db)

    responses = await asyncio.gather(
        *(client.post(endpoint.path, json=body, headers=keyed(admin, "burst")) for _ in range(20))
    )

    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409}, codes
    created = [r for r in responses if r.status_code == 201]
    originals = [r for r in created if "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1, codes
    assert all(r.content == originals[0].content for r in created)
    assert all(r.headers["Location"] == originals[0].headers["Location"] for r in created)
    for conflict in (r for r in responses if r.status_code == 409):
        assert "Idempotency-Key" in assert_problem(conflict, 409)["detail"]
    assert await endpoint.count(db) == before + 1
    assert await stored_keys(db) == 1
    # Once the burst is over, every retry is a replay.
    late = await client.post(endpoint.path, json=body, headers=keyed(admin, "burst"))
    assert late.headers["Idempotent-Replayed"] == "true"
    assert late.content == originals[0].content


async def test_another_instance_replays_the_answer(
    client: httpx.AsyncClient, settings: Settings, database_url: str, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    body = customer_body()
    first = await client.post("/api/customers", json=body, headers=keyed(admin, "across"))
    assert first.status_code == 201

    # A second process (or the first, restarted): a new app, its own pool, the same database.
    second_app = create_app(settings.model_copy(), database_url=database_url)
    async with (
        LifespanManager(second_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second_app), base_url="http://crm.test") as other,
    ):
        replay = await other.post("/api/customers", json=body, headers=keyed(admin, "across"))
        changed = await other.post("/api/customers", json={**body, "notes": "other"}, headers=keyed(admin, "across"))

    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert replay.headers["Location"] == first.headers["Location"]
    assert replay.headers["ETag"] == first.headers["ETag"]
    assert_problem(changed, 422, "Idempotency-Key")
    assert await db.fetchval("SELECT count(*) FROM customers") == 1
