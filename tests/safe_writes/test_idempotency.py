"""Idempotency-Key on POST: one record per (user, key, body) within 24 h, the first answer replayed.

Decisions where the issue is silent (also in the README's reliability section):
- a request that fails (4xx from the service, 409 duplicate) stores no key: its transaction
  rolls back with the key, so a retry with the same key runs again, and a *corrected* body
  with that key is a first request, not a 422;
- a key is one user's, across endpoints: reusing it on another POST route is a different
  request, so 422, like a different body;
- an expired key (over 24 h) is free again: the next request with it creates anew;
- a replay repeats the first answer even if the record was changed or deleted since;
- keys are matched byte for byte: no trimming or case folding (`k` and `K` are two keys).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.safe_writes.support import (
    ENDPOINT_IDS,
    ENDPOINTS,
    POST_CUSTOMERS,
    POST_INTERACTIONS,
    Endpoint,
    Headers,
    keyed,
    stored_keys,
)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
async def test_same_key_and_body_replays_the_first_answer(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any], endpoint: Endpoint
) -> None:
    body = await endpoint.body(client, admin)
    before = await endpoint.count(db)

    first = await client.post(endpoint.path, json=body, headers=keyed(admin, "order-7f3a"))
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    created = first.json()
    # The resource moves on; a replay still tells the client what its request did back then.
    edit = {endpoint.field: "changed later"}
    assert (await client.put(f"{endpoint.path}/{created['id']}", json=edit, headers=admin)).status_code == 200

    # The same JSON, written differently (key order, whitespace), is the same request.
    rewritten = json.dumps(dict(reversed(body.items())), indent=2)
    replay = await client.post(
        endpoint.path, content=rewritten, headers={**keyed(admin, "order-7f3a"), "Content-Type": "application/json"}
    )

    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert replay.headers["Location"] == first.headers["Location"] == f"{endpoint.path}/{created['id']}"
    assert replay.headers["ETag"] == first.headers["ETag"] == '"1"'
    assert replay.headers["Content-Type"] == first.headers["Content-Type"] == "application/json"
    assert await endpoint.count(db) == before + 1
    assert await stored_keys(db) == 1


async def test_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    for endpoint in ENDPOINTS:
        body = await endpoint.body(client, admin)
        key = f"key-for-{endpoint.table}"
        assert (await client.post(endpoint.path, json=body, headers=keyed(admin, key))).status_code == 201
        before = await endpoint.count(db)

        other = await client.post(
            endpoint.path, json={**body, endpoint.field: "Something else"}, headers=keyed(admin, key)
        )

        problem = assert_problem(other, 422, "Idempotency-Key")
        assert "Idempotent-Replayed" not in other.headers
        assert "different request body" in problem["errors"][0]["message"]
        assert await endpoint.count(db) == before, endpoint.table


async def test_same_key_on_another_endpoint_is_422(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await client.post("/api/customers", json={"first_name": "A", "last_name": "B"}, headers=admin)
    interaction = {"customer_id": customer.json()["id"], "type": "call", "subject": "Hi"}
    assert (await client.post("/api/interactions", json=interaction, headers=keyed(admin, "shared"))).status_code == 201

    response = await client.post(
        "/api/contacts",
        json={"customer_id": customer.json()["id"], "first_name": "C", "last_name": "D"},
        headers=keyed(admin, "shared"),
    )

    assert_problem(response, 422, "Idempotency-Key")
    assert await db.fetchval("SELECT count(*) FROM contacts") == 0


async def test_the_key_belongs_to_one_user(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    alice = tokens.headers("employee", user_id=uuid.uuid4())
    bob = tokens.headers("employee", user_id=uuid.uuid4())
    body = await POST_INTERACTIONS.body(client, alice)

    first = await client.post("/api/interactions", json=body, headers=keyed(alice, "retry-1"))
    other_user = await client.post("/api/interactions", json=body, headers=keyed(bob, "retry-1"))
    alice_again = await client.post("/api/interactions", json=body, headers=keyed(alice, "retry-1"))
    bob_again = await client.post("/api/interactions", json=body, headers=keyed(bob, "retry-1"))

    assert (first.status_code, other_user.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in other_user.headers
    assert other_user.json()["id"] != first.json()["id"]
    assert alice_again.content == first.content
    assert bob_again.content == other_user.content
    assert await db.fetchval("SELECT count(*) FROM interactions") == 2
    assert await stored_keys(db) == 2


async def test_failed_request_stores_no_key_and_a_corrected_retry_succeeds(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    taken = await create_customer(client, admin)
    bad = {"first_name": "Dup", "last_name": "Licate", "email": taken["email"]}

    conflict = await client.post("/api/customers", json=bad, headers=keyed(admin, "k-1"))
    assert_problem(conflict, 409)
    assert await stored_keys(db) == 0
    # Not replayed: the failed attempt left nothing behind, so the retry runs (and fails) again.
    again = await client.post("/api/customers", json=bad, headers=keyed(admin, "k-1"))
    assert_problem(again, 409)
    assert "Idempotent-Replayed" not in again.headers

    fixed = {**bad, "email": "dup.licate@example.com"}
    created = await client.post("/api/customers", json=fixed, headers=keyed(admin, "k-1"))
    assert created.status_code == 201, created.text
    assert "Idempotent-Replayed" not in created.headers
    replay = await client.post("/api/customers", json=fixed, headers=keyed(admin, "k-1"))
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == created.content
    # From now on the key is bound to the corrected body.
    assert_problem(await client.post("/api/customers", json=bad, headers=keyed(admin, "k-1")), 422, "Idempotency-Key")
    assert await db.fetchval("SELECT count(*) FROM customers") == 2


async def test_service_422_stores_no_key(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    elsewhere = await create_customer(client, admin, contacts=[{"first_name": "X", "last_name": "Y"}])
    body = {
        "customer_id": customer["id"],
        "contact_id": elsewhere["contacts"][0]["id"],
        "type": "call",
        "subject": "Wrong contact",
    }

    rejected = await client.post("/api/interactions", json=body, headers=keyed(admin, "k-2"))
    assert_problem(rejected, 422, "contact_id")
    assert await stored_keys(db) == 0

    body["contact_id"] = None
    accepted = await client.post("/api/interactions", json=body, headers=keyed(admin, "k-2"))
    assert accepted.status_code == 201, accepted.text
    assert await stored_keys(db) == 1


async def test_keys_expire_after_24_hours(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    body = await POST_INTERACTIONS.body(client, admin)
    first = await client.post("/api/interactions", json=body, headers=keyed(admin, "daily"))
    assert first.status_code == 201

    await db.execute("UPDATE idempotency_keys SET created_at = now() - interval '23 hours 59 minutes'")
    young = await client.post("/api/interactions", json=body, headers=keyed(admin, "daily"))
    assert young.headers.get("Idempotent-Replayed") == "true"
    assert young.content == first.content

    await db.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    fresh = await client.post("/api/interactions", json=body, headers=keyed(admin, "daily"))
    assert fresh.status_code == 201, fresh.text
    assert "Idempotent-Replayed" not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]
    assert await db.fetchval("SELECT count(*) FROM interactions") == 2

    # The key starts a new 24 h life, bound to the new answer.
    row = await db.fetchrow("SELECT created_at > now() - interval '1 minute' AS renewed, body FROM idempotency_keys")
    assert row is not None
    assert row["renewed"] is True
    assert json.loads(row["body"])["id"] == fresh.json()["id"]
    replay = await client.post("/api/interactions", json=body, headers=keyed(admin, "daily"))
    assert replay.content == fresh.content

    # An expired key may also carry a different body: it is free again, not a 422.
    await db.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    other = await client.post("/api/interactions", json={**body, "subject": "Other"}, headers=keyed(admin, "daily"))
    assert other.status_code == 201, other.text
    assert await db.fetchval("SELECT count(*) FROM interactions") == 3


INVALID_KEYS: dict[str, str | bytes] = {
    "empty": "",
    "256 characters": "k" * 256,
    "non-ASCII (UTF-8)": "ключ".encode(),
    "non-ASCII (Latin-1)": b"cl\xe9",
    "control character": "a\x7fb",
    "tab": "a\tb",
}


async def test_invalid_keys_are_422_and_create_nothing(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    for name, key in INVALID_KEYS.items():
        headers: dict[str, Any] = {**admin, "Idempotency-Key": key}
        response = await client.post("/api/customers", json={"first_name": "A", "last_name": "B"}, headers=headers)
        assert response.status_code == 422, (name, response.text)
        assert_problem(response, 422, "Idempotency-Key")
    assert await db.fetchval("SELECT count(*) FROM customers") == 0
    assert await stored_keys(db) == 0


async def test_longest_and_punctuated_keys_are_valid(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    # "x" and "X" send the same body: only exact key matching keeps them two records.
    for key in ("k" * 255, "x", "X", 'a b:c/d"e~!{}'):
        body = {"first_name": "Key", "last_name": str(len(key))}
        first = await client.post("/api/customers", json=body, headers=keyed(admin, key))
        replay = await client.post("/api/customers", json=body, headers=keyed(admin, key))
        assert first.status_code == 201, (key, first.text)
        assert replay.headers.get("Idempotent-Replayed") == "true", key
        assert replay.content == first.content
    assert await db.fetchval("SELECT count(*) FROM customers") == 4
    assert await stored_keys(db) == 4


async def test_without_a_key_every_post_creates(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    body = await POST_CUSTOMERS.body(client, admin)
    responses = [await client.post("/api/customers", json=body, headers=admin) for _ in range(2)]
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json()["id"] != responses[1].json()["id"]
    assert await stored_keys(db) == 0


async def test_storing_a_key_clears_expired_ones(
    client: httpx.AsyncClient, admin: Headers, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    # No scheduler is needed to keep the table bounded: writes that store a key sweep old ones.
    body = await POST_INTERACTIONS.body(client, admin)
    for n in range(3):
        user = tokens.headers("employee", user_id=uuid.uuid4())
        response = await client.post("/api/interactions", json=body, headers=keyed(user, f"old-{n}"))
        assert response.status_code == 201
    await db.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key <> 'old-2'")
    assert await stored_keys(db) == 3

    fresh = await client.post("/api/interactions", json=body, headers=keyed(admin, "new"))

    assert fresh.status_code == 201
    assert sorted(await db.fetchval("SELECT array_agg(key) FROM idempotency_keys")) == ["new", "old-2"]


async def test_replay_outlives_the_record(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    # A replay repeats what happened (the record was created), it does not re-create it.
    body = await POST_INTERACTIONS.body(client, admin)
    first = await client.post("/api/interactions", json=body, headers=keyed(admin, "gone"))
    assert (await client.delete(first.headers["Location"], headers=admin)).status_code == 204

    replay = await client.post("/api/interactions", json=body, headers=keyed(admin, "gone"))

    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert await db.fetchval("SELECT count(*) FROM interactions") == 0
