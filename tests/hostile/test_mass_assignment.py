"""Mass assignment: read-only fields in any POST or PUT body (nested contacts included) are a 422
naming the field as read-only, and nothing changes - not even the writable fields sent with them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem, create_customer, customer_body
from tests.hostile.support import assert_clean, snapshot

STAMP = "2000-01-01T00:00:00Z"
READ_ONLY: dict[str, Any] = {
    "id": "00000000-0000-4000-8000-0000000000aa",
    "version": 99,
    "created_at": STAMP,
    "updated_at": STAMP,
    "user_id": "00000000-0000-4000-8000-0000000000bb",
    "customer": {"id": "00000000-0000-4000-8000-0000000000cc", "first_name": "Mallory"},
    "contacts_count": 0,
    "primary_contact": {"first_name": "Mallory", "last_name": "M"},
}


async def test_read_only_fields_are_refused_everywhere(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "Pri", "last_name": "Mary"}])
    contact_id = customer["contacts"][0]["id"]
    interaction = await client.post(
        "/api/interactions", json={"customer_id": customer["id"], "type": "call", "subject": "Hi"}, headers=admin
    )
    interaction_id = interaction.json()["id"]
    nested = {"first_name": "Nes", "last_name": "Ted"}
    # (method, url, a valid body, where a read-only field goes: "" top level, "contacts.0" nested)
    writes: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/customers", customer_body(), ""),
        ("PUT", f"/api/customers/{customer['id']}", {"city": "Changed"}, ""),
        ("POST", "/api/customers", customer_body(contacts=[dict(nested)]), "contacts.0"),
        ("PUT", f"/api/customers/{customer['id']}", {"city": "Changed", "contacts": [dict(nested)]}, "contacts.0"),
        ("POST", "/api/contacts", {"customer_id": customer["id"], **nested}, ""),
        ("PUT", f"/api/contacts/{contact_id}", {"position": "Changed"}, ""),
        ("POST", "/api/interactions", {"customer_id": customer["id"], "type": "email", "subject": "New"}, ""),
        ("PUT", f"/api/interactions/{interaction_id}", {"subject": "Changed"}, ""),
    ]
    before = await snapshot(db)
    refused = 0
    for method, url, valid, where in writes:
        for field, value in READ_ONLY.items():
            if where and field == "id" and method == "PUT":
                continue  # a nested contact's `id` says which contact to update: writable there
            body: dict[str, Any] = (
                {**valid, "contacts": [{**valid["contacts"][0], field: value}]} if where else {**valid, field: value}
            )
            name = f"{where}.{field}" if where else field
            response = await client.request(method, url, json=body, headers=admin)
            assert_clean(response)
            problem = assert_problem(response, 422, name)
            assert {"field": name, "message": "read-only field"} in problem["errors"], (method, url, problem)
            refused += 1
    assert refused == 8 * len(READ_ONLY) - 1
    assert await snapshot(db) == before

    # The same bodies without the read-only field are accepted: it was the field that was refused.
    for method, url, valid, _ in writes:
        response = await client.request(method, url, json=valid, headers=admin)
        assert response.status_code in {200, 201}, (method, url, response.text)


async def test_read_only_fields_cannot_be_smuggled_as_other_spellings(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    """camelCase, upper case or padded names are not aliases of the read-only fields: unknown fields."""
    customer = await create_customer(client, admin)
    before = await snapshot(db)
    for field in ["createdAt", "updatedAt", "userId", "ID", "Version", " id", "id ", "_id", "version\u200b"]:
        response = await client.put(f"/api/customers/{customer['id']}", json={"city": "X", field: 1}, headers=admin)
        problem = assert_problem(response, 422, field)
        assert {"field": field, "message": "unknown field"} in problem["errors"]
    assert await snapshot(db) == before
    row = await db.fetchrow("SELECT id, version FROM customers")
    assert row is not None
    assert (str(row["id"]), row["version"]) == (customer["id"], 1)
    assert uuid.UUID(customer["id"]) == row["id"]
