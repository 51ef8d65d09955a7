"""Duplicate keys in a JSON body: the last one wins, everywhere, every time.

RFC 8259 leaves duplicate names to the implementation. The service parses bodies with Python's
json module, which keeps the last value; everything downstream (validation, the stored row, the
Idempotency-Key fingerprint) sees only that one. The earlier values are never validated, never
stored and never compared: a body is "the same request" as its last-wins equivalent.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem, create_customer
from tests.hostile.support import assert_clean, snapshot

JSON = {"Content-Type": "application/json"}


async def send(client: httpx.AsyncClient, method: str, url: str, raw: str, headers: dict[str, str]) -> httpx.Response:
    response = await client.request(method, url, content=raw.encode(), headers=headers | JSON)
    assert_clean(response)
    return response


async def test_last_value_is_the_one_stored(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    raw = '{"first_name": "First", "last_name": "Dup", "first_name": "Last", "status": "lead", "status": "inactive"}'
    for _ in range(3):  # deterministic: the same body always gives the same row
        created = await send(client, "POST", "/api/customers", raw, admin)
        assert created.status_code == 201, created.text
        assert (created.json()["first_name"], created.json()["status"]) == ("Last", "inactive")
        row = await db.fetchrow(
            "SELECT first_name, status FROM customers WHERE id = $1", uuid.UUID(created.json()["id"])
        )
        assert row is not None
        assert (row["first_name"], row["status"]) == ("Last", "inactive")

    customer = created.json()
    updated = await send(client, "PUT", f"/api/customers/{customer['id']}", '{"city": "Kyiv", "city": "Lviv"}', admin)
    assert updated.json()["city"] == "Lviv"
    assert await db.fetchval("SELECT city FROM customers WHERE id = $1", uuid.UUID(customer["id"])) == "Lviv"


async def test_only_the_last_value_is_validated(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    # An invalid first value is simply gone...
    ok = await send(client, "POST", "/api/customers", '{"first_name": "", "first_name": "Ok", "last_name": "B"}', admin)
    assert ok.status_code == 201, ok.text
    # ...and a valid first value does not excuse an invalid last one: 422, nothing stored.
    before = await snapshot(db)
    for raw, field in [
        ('{"first_name": "Ok", "first_name": "", "last_name": "B"}', "first_name"),
        ('{"first_name": "A", "last_name": "B", "status": "lead", "status": "deleted"}', "status"),
        ('{"first_name": "A", "last_name": "B", "email": "a@example.com", "email": "not-an-email"}', "email"),
    ]:
        assert_problem(await send(client, "POST", "/api/customers", raw, admin), 422, field)
    assert await snapshot(db) == before


async def test_a_duplicated_read_only_key_is_still_read_only(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    before = await snapshot(db)
    raw = f'{{"id": "{customer["id"]}", "first_name": "A", "last_name": "B", "id": "{uuid.uuid4()}"}}'
    problem = assert_problem(await send(client, "POST", "/api/customers", raw, admin), 422, "id")
    assert {"field": "id", "message": "read-only field"} in problem["errors"]
    raw = '{"version": 1, "city": "X", "version": 99}'
    assert_problem(await send(client, "PUT", f"/api/customers/{customer['id']}", raw, admin), 422, "version")
    assert await snapshot(db) == before


async def test_nested_and_other_resources_follow_the_same_rule(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    raw = '{"first_name": "A", "last_name": "B", "contacts": [{"first_name": "X", "last_name": "Y", "last_name": "Z"}]}'
    customer = (await send(client, "POST", "/api/customers", raw, admin)).json()
    assert customer["contacts"][0]["last_name"] == "Z"
    # The whole `contacts` array duplicated: only the last array exists.
    raw = '{"first_name": "A", "last_name": "B", "contacts": [{"first_name": "P", "last_name": "P"}], "contacts": []}'
    created = (await send(client, "POST", "/api/customers", raw, admin)).json()
    assert created["contacts"] == []

    raw = f'{{"customer_id": "{uuid.uuid4()}", "customer_id": "{customer["id"]}", "first_name": "C", "last_name": "D"}}'
    contact = await send(client, "POST", "/api/contacts", raw, admin)
    assert contact.status_code == 201, contact.text
    assert contact.json()["customer_id"] == customer["id"]

    raw = f'{{"customer_id": "{customer["id"]}", "type": "call", "type": "meeting", "subject": "s", "subject": "t"}}'
    interaction = await send(client, "POST", "/api/interactions", raw, admin)
    assert (interaction.json()["type"], interaction.json()["subject"]) == ("meeting", "t")
    row = await db.fetchrow("SELECT type, subject FROM interactions WHERE id = $1", uuid.UUID(interaction.json()["id"]))
    assert row is not None
    assert (str(row["type"]), row["subject"]) == ("meeting", "t")


async def test_idempotency_compares_the_last_wins_body(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    key = {"Idempotency-Key": f"dup-{uuid.uuid4()}"}
    first = await send(
        client, "POST", "/api/customers", '{"first_name": "A", "first_name": "B", "last_name": "K"}', admin | key
    )
    assert first.status_code == 201, first.text
    # The same request written without the duplicate: a replay, not a second customer.
    again = await send(client, "POST", "/api/customers", '{"first_name": "B", "last_name": "K"}', admin | key)
    assert again.status_code == 201
    assert again.json() == first.json()
    # The duplicate in the other order is a different request: 422, as any changed body.
    other = await send(
        client, "POST", "/api/customers", '{"first_name": "B", "first_name": "A", "last_name": "K"}', admin | key
    )
    assert_problem(other, 422)
    assert await db.fetchval("SELECT count(*) FROM customers") == 1
