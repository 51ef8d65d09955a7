"""Customer segments: counts by status and type on known data, zero counts included."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import asyncpg
import httpx

from tests.helpers import create_customer

STATUSES = ["active", "inactive", "lead", "prospect", "customer", "pending"]
TYPES = ["individual", "business", "government", "nonprofit", "unspecified"]


async def _segments(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/customers/segments", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_empty_database_has_every_key_at_zero(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert await _segments(client, admin) == {
        "total": 0,
        "byStatus": dict.fromkeys(STATUSES, 0),
        "byType": dict.fromkeys(TYPES, 0),
        "byStatusAndType": {s: dict.fromkeys(TYPES, 0) for s in STATUSES},
    }


async def test_counts_on_known_data(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    # Every status with every type (incl. none) in different multiplicities, some combinations absent.
    combos: Counter[tuple[str, str]] = Counter()
    for i, status in enumerate(STATUSES):
        for j, type_ in enumerate(TYPES):
            count = (i + j) % 3  # 0, 1 or 2 of each combination
            combos[(status, type_)] = count
            for _ in range(count):
                await db.execute(
                    "INSERT INTO customers (first_name, last_name, owner_id, status, type)"
                    " VALUES ('S', 'T', $1, $2, $3)",
                    uuid.uuid4(),
                    status,
                    None if type_ == "unspecified" else type_,
                )
    # And one through the API, with the default status and no type.
    await create_customer(client, admin, status="active")
    combos[("active", "unspecified")] += 1

    body = await _segments(client, admin)

    assert body["total"] == sum(combos.values()) == await db.fetchval("SELECT count(*) FROM customers")
    assert body["byStatus"] == {s: sum(combos[(s, t)] for t in TYPES) for s in STATUSES}
    assert body["byType"] == {t: sum(combos[(s, t)] for s in STATUSES) for t in TYPES}
    assert body["byStatusAndType"] == {s: {t: combos[(s, t)] for t in TYPES} for s in STATUSES}
    # Spot checks, so the test does not only re-derive its own arithmetic.
    assert body["byStatusAndType"]["active"]["individual"] == 0
    assert body["byStatusAndType"]["active"]["business"] == 1
    assert body["byStatusAndType"]["active"]["unspecified"] == 2
    assert body["byStatusAndType"]["inactive"]["nonprofit"] == 1
    assert body["byStatusAndType"]["lead"]["individual"] == 2
    assert list(body["byStatus"]) == STATUSES
    assert list(body["byType"]) == TYPES


async def test_segments_follow_updates_and_deletes(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    a = await create_customer(client, admin, status="lead", type="individual")
    b = await create_customer(client, admin, status="lead")
    assert (
        await client.put(f"/api/customers/{a['id']}", json={"status": "customer"}, headers=admin)
    ).status_code == 200
    assert (await client.delete(f"/api/customers/{b['id']}", headers=admin)).status_code == 204

    body = await _segments(client, admin)

    assert body["total"] == 1
    assert body["byStatus"]["lead"] == 0
    assert body["byStatus"]["customer"] == 1
    assert body["byType"] == {"individual": 1, "business": 0, "government": 0, "nonprofit": 0, "unspecified": 0}
    assert body["byStatusAndType"]["customer"]["individual"] == 1
