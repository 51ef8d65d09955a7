"""No write is sent twice: a connection cut after the server answered an INSERT, or the COMMIT
that followed one, gives the client a 503 "outcome unknown" and stores the customer at most once.

A proxy between the service and PostgreSQL (tests/reliability/pgproxy.py) cuts both sockets
right after forwarding the server's CommandComplete; `pg_terminate_backend` rarely hits that
window.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from crm.config import Settings
from tests.helpers import TokenFactory, assert_problem, customer_body
from tests.reliability.pgproxy import Cut, PgProxy
from tests.reliability.support import app_client

REQUESTS = 20


def with_contact(email: str) -> dict[str, Any]:
    return customer_body(email=email, contacts=[{"first_name": "Olena", "last_name": "Koval"}])


def plain(email: str) -> dict[str, Any]:
    return customer_body(email=email)


# Both through the one create path (a transaction); the plain body was once answered by a
# second path beside it, which replayed a create whose connection failed after its INSERT.
BODIES = [
    pytest.param(with_contact, id="with-contact"),
    pytest.param(plain, id="plain"),
]


@pytest.fixture
async def proxied(database_url: str, settings: Settings) -> AsyncIterator[tuple[PgProxy, httpx.AsyncClient]]:
    async with PgProxy.to(database_url) as proxy, app_client(settings, proxy.url(database_url)) as (_, http):
        yield proxy, http


def assert_outcome_unknown(response: httpx.Response) -> None:
    body = assert_problem(response, 503)
    assert body["type"] == "urn:crm:problem:outcome-unknown", body
    assert "unknown" in body["detail"], body
    assert "Idempotency-Key" in body["detail"], body
    assert response.headers["Retry-After"].isdigit()


async def stored(db: asyncpg.Connection[Any], prefix: str) -> dict[str, list[str]]:
    rows = await db.fetch("SELECT email, id::text FROM customers WHERE email LIKE $1", prefix + "%")
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["email"], []).append(row["id"])
    return found


async def wait_for_open_transactions_to_end(db: asyncpg.Connection[Any], within: float = 5.0) -> None:
    """The server has noticed the cut connections: their transactions are gone (and their locks)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await db.execute("SELECT pg_stat_clear_snapshot()")
        open_ = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        )
        if open_ == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"transactions still open after {within} s")


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("cut", ["INSERT", "COMMIT"])
async def test_a_cut_connection_never_stores_a_create_twice(
    proxied: tuple[PgProxy, httpx.AsyncClient],
    tokens: TokenFactory,
    db: asyncpg.Connection[Any],
    cut: Cut,
    body: Callable[[str], dict[str, Any]],
) -> None:
    proxy, http = proxied
    headers = tokens.headers("manager")
    prefix = f"cut.{uuid.uuid4().hex[:8]}."
    answers: list[tuple[str, bool, httpx.Response]] = []
    for i in range(REQUESTS):
        email = f"{prefix}{i}@example.com"
        armed = i % 2 == 0
        if armed:
            proxy.arm(cut)
        response = await http.post("/api/customers", json=body(email), headers=headers)
        proxy.disarm()  # a request that never reached the armed point must not pass it on
        answers.append((email, armed, response))
    assert proxy.cuts == REQUESTS // 2, "the proxy did not cut every armed request"

    await wait_for_open_transactions_to_end(db)
    rows = await stored(db, prefix)
    assert {email: ids for email, ids in rows.items() if len(ids) > 1} == {}, "stored twice"
    for email, armed, response in answers:
        if response.status_code == 201:
            assert rows.get(email) == [response.json()["id"]], f"{email}: answered 201 but not stored"
        else:
            assert_outcome_unknown(response)
            # After the INSERT the transaction was still open: the server rolled it back.
            # After its COMMIT it is stored; either way the client was told it cannot know.
            assert (email in rows) == (cut == "COMMIT"), (email, rows.get(email))
        assert (response.status_code != 201) == armed, (email, response.status_code, response.text)


@pytest.mark.parametrize("body", [pytest.param(with_contact, id="with-contact"), pytest.param(plain, id="plain")])
@pytest.mark.parametrize("cut", ["INSERT", "COMMIT"])
async def test_retry_with_the_same_idempotency_key_stores_exactly_one(
    proxied: tuple[PgProxy, httpx.AsyncClient],
    tokens: TokenFactory,
    db: asyncpg.Connection[Any],
    cut: Cut,
    body: Callable[[str], dict[str, Any]],
) -> None:
    proxy, http = proxied
    headers = {**tokens.headers("manager"), "Idempotency-Key": uuid.uuid4().hex}
    email = f"retry.{uuid.uuid4().hex[:8]}@example.com"
    payload = body(email)

    proxy.arm(cut)
    first = await http.post("/api/customers", json=payload, headers=headers)
    proxy.disarm()
    assert proxy.cuts == 1, first.text
    assert_outcome_unknown(first)

    await wait_for_open_transactions_to_end(db)
    retry = await http.post("/api/customers", json=payload, headers=headers)
    assert retry.status_code == 201, retry.text
    # After the COMMIT the first attempt is stored with its key: the retry replays its answer.
    assert (retry.headers.get("Idempotent-Replayed") == "true") == (cut == "COMMIT")
    assert await stored(db, email) == {email: [retry.json()["id"]]}


async def test_a_failure_before_any_write_says_nothing_was_changed(
    proxied: tuple[PgProxy, httpx.AsyncClient], tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    """An update whose first statement (the row's lock, a read) finds its pooled connection gone
    has sent nothing: 503 database-unavailable, safe to retry, and the retry works."""
    _, http = proxied
    headers = tokens.headers("manager")
    created = await http.post("/api/customers", json=with_contact(f"before.{uuid.uuid4().hex}@x.com"), headers=headers)
    assert created.status_code == 201, created.text
    url = f"/api/customers/{created.json()['id']}"
    # Every idle connection of the application's engine dies on the server's side.
    await db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'crm'"
    )
    await wait_for_open_transactions_to_end(db)
    response = await http.put(url, json={"notes": "first try"}, headers=headers)
    body = assert_problem(response, 503)
    assert body["type"] == "urn:crm:problem:database-unavailable", body
    assert (await db.fetchval("SELECT version FROM customers WHERE id = $1", uuid.UUID(created.json()["id"]))) == 1
    retry = await http.put(url, json={"notes": "second try"}, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["version"] == 2
