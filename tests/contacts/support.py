"""Small request builders for the contacts tests."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx


async def create_contact(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"customer_id": customer_id, "first_name": "Taras", "last_name": "Bondar", **fields}
    response = await client.post("/api/contacts", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def primaries(db: asyncpg.Connection[Any], customer_id: str) -> list[str]:
    """Ids of the customer's primary contacts, as stored."""
    rows = await db.fetch(
        "SELECT id FROM contacts WHERE customer_id = $1 AND is_primary ORDER BY id", uuid.UUID(customer_id)
    )
    return [str(r["id"]) for r in rows]


async def contact_count(db: asyncpg.Connection[Any], customer_id: str) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", uuid.UUID(customer_id))
    return count
