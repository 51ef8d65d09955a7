from __future__ import annotations

import httpx

from tests.helpers import create_customer


async def test_create_and_get_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    got = await client.get(f"/api/customers/{created['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json()["contacts"][0]["is_primary"] is True


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    assert (await client.get("/ready")).status_code == 200
