"""Customers under concurrent requests: no lost updates, no 5xx, cascades that leave nothing behind."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import create_customer

PARTIAL_UPDATES: list[dict[str, Any]] = [
    {"city": "Kharkiv"},
    {"country": "Ukraine"},
    {"address": "5 Sumska St"},
    {"postal_code": "61000"},
    {"company_name": "Parallel LLC"},
    {"tax_id": "UA-77"},
    {"phone": "+380 57 700 00 00"},
    {"notes": "written in parallel"},
    {"type": "government"},
    {"status": "customer"},
    {"last_name": "Concurrent"},
    {"owner_id": "6f1c1a52-1d7e-4a39-9d7b-3b1f2a000001"},
]


async def test_parallel_partial_updates_lose_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)

    responses = await asyncio.gather(
        *(client.put(f"/api/customers/{customer['id']}", json=body, headers=admin) for body in PARTIAL_UPDATES)
    )

    assert [r.status_code for r in responses] == [200] * len(PARTIAL_UPDATES)
    final = (await client.get(f"/api/customers/{customer['id']}", headers=admin)).json()
    for body in PARTIAL_UPDATES:
        for key, value in body.items():
            assert final[key] == value, key
    assert final["first_name"] == customer["first_name"]
    assert final["version"] == customer["version"] + len(PARTIAL_UPDATES)
    # Each response saw its own write applied on top of the earlier ones: versions are all distinct.
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 2 + len(PARTIAL_UPDATES)))
    assert (
        await db.fetchval("SELECT version FROM customers WHERE id = $1", uuid.UUID(customer["id"])) == final["version"]
    )


async def test_updates_racing_a_delete(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "C", "last_name": "C"}])
    url = f"/api/customers/{customer['id']}"
    requests = [client.put(url, json={"notes": f"n{i}"}, headers=admin) for i in range(10)]
    requests.insert(5, client.delete(url, headers=admin))
    requests.append(client.delete(url, headers=admin))

    responses = await asyncio.gather(*requests)

    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 204, 404}, [r.text for r in responses if r.status_code >= 500]
    assert codes.count(204) == 1
    assert await db.fetchval("SELECT count(*) FROM customers") == 0
    assert await db.fetchval("SELECT count(*) FROM contacts") == 0


async def test_delete_cascades_to_interactions(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    doomed = await create_customer(client, admin, contacts=[{"first_name": "C", "last_name": "C"}])
    kept = await create_customer(client, admin)
    for customer_id in (doomed["id"], kept["id"]):
        await db.execute(
            "INSERT INTO interactions (customer_id, user_id, type, subject) VALUES ($1, $2, 'call', 'hello')",
            uuid.UUID(customer_id),
            uuid.uuid4(),
        )

    assert (await client.delete(f"/api/customers/{doomed['id']}", headers=admin)).status_code == 204

    remaining = await db.fetch("SELECT customer_id FROM interactions")
    assert [str(r["customer_id"]) for r in remaining] == [kept["id"]]
