"""A request that cannot get a pooled connection in time gets 503 with Retry-After; it never hangs."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg

from crm.config import Settings
from tests.helpers import assert_problem, create_customer
from tests.reliability.support import app_client, wait_for_lock_waiters


async def test_exhausted_pool_answers_503_fast(
    settings: Settings, database_url: str, db: asyncpg.Connection[Any], admin: dict[str, str]
) -> None:
    async with app_client(settings, database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.5) as (_, http):
        customer = await create_customer(http, admin)
        customer_id = uuid.UUID(customer["id"])

        # Hold the row, so a PUT to it blocks while holding the pool's only connection.
        lock = db.transaction()
        await lock.start()
        try:
            await db.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", customer_id)
            put = asyncio.create_task(
                http.put(f"/api/customers/{customer['id']}", json={"notes": "waited"}, headers=admin)
            )
            await wait_for_lock_waiters(db, 1)

            started = time.perf_counter()
            # A read that needs a session (the list's own read pool is another pool: see below).
            contacts = f"/api/contacts/customer/{customer['id']}"
            response = await asyncio.wait_for(http.get(contacts, headers=admin), timeout=5)
            elapsed = time.perf_counter() - started
            body = assert_problem(response, 503)
            assert body["type"] == "urn:crm:problem:database-unavailable"
            assert response.headers["Retry-After"] == "2"
            # It waited for the pool (0.5 s), then gave up instead of queueing behind the lock.
            assert 0.4 <= elapsed < 2.0, elapsed

            # Every write needs a session: the same answer, and nothing of it reaches the database.
            for body in (
                {"first_name": "No", "last_name": "Room"},
                {"first_name": "No", "last_name": "Room", "contacts": [{"first_name": "A", "last_name": "B"}]},
            ):
                started = time.perf_counter()
                refused = await asyncio.wait_for(http.post("/api/customers", json=body, headers=admin), timeout=5)
                assert time.perf_counter() - started < 2.0
                assert_problem(refused, 503)
            assert not put.done()
        finally:
            await lock.rollback()

        # The blocked PUT goes through once the row is free, and the pool serves again.
        updated = await asyncio.wait_for(put, timeout=5)
        assert updated.status_code == 200, updated.text
        assert updated.json()["notes"] == "waited"
        assert (await http.get(contacts, headers=admin)).status_code == 200

    assert await db.fetchval("SELECT notes FROM customers WHERE id = $1", customer_id) == "waited"
    assert await db.fetchval("SELECT count(*) FROM customers WHERE first_name = 'No' AND last_name = 'Room'") == 0


async def test_exhausted_read_pool_answers_503_fast(
    settings: Settings, database_url: str, admin: dict[str, str]
) -> None:
    """The single-statement reads (list, segments, GET by id) have a pool of their own: when
    it has no connection to give within the pool timeout, the same 503, never a hang."""
    async with app_client(settings, database_url, db_pool_size=1, db_pool_timeout=0.5) as (app, http):
        customer = await create_customer(http, admin)
        held = await app.state.read_pool.acquire()  # its only connection
        try:
            for path in ("/api/customers", "/api/customers/segments", f"/api/customers/{customer['id']}"):
                started = time.perf_counter()
                response = await asyncio.wait_for(http.get(path, headers=admin), timeout=5)
                elapsed = time.perf_counter() - started
                body = assert_problem(response, 503)
                assert body["type"] == "urn:crm:problem:database-unavailable"
                assert response.headers["Retry-After"] == "2"
                assert 0.4 <= elapsed < 2.0, (path, elapsed)
            # Writes run in transactions on the other pool: a busy read pool does not hold them up.
            created = await http.post("/api/customers", json={"first_name": "A", "last_name": "B"}, headers=admin)
            assert created.status_code == 201, created.text
        finally:
            await app.state.read_pool.release(held)
        listed = await http.get("/api/customers", params={"sortBy": "created_at", "sortOrder": "asc"}, headers=admin)
        assert [c["first_name"] for c in listed.json()["customers"]] == [customer["first_name"], "A"]
