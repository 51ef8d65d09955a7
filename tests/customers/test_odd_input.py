"""No input of any kind yields a 500: odd bodies and parameters on every customer and contact route."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem, create_customer

ODD_CUSTOMER_BODIES: list[Any] = [
    {"first_name": {"nested": 1}, "last_name": "b"},
    {"first_name": True, "last_name": "b"},
    {"first_name": "a", "last_name": "b", "status": ["active"]},
    {"first_name": "a", "last_name": "b", "email": ["a@example.com"]},
    {"first_name": "a", "last_name": "b", "contacts": [None]},
    {"first_name": "a", "last_name": "b", "contacts": [[]]},
    {"first_name": "a", "last_name": "b", "contacts": {"first_name": "x"}},
    {"first_name": "a", "last_name": "b", "contacts": "none"},
    {"first_name": "a", "last_name": "b", "owner_id": {"id": 1}},
    {"first_name": "a" * 100_000, "last_name": "b"},
    {"first_name": "a", "last_name": "b", "notes": "n" * 10_001},
    {"": 1, "first_name": "a", "last_name": "b"},
    {"first_name": "a", "last_name": "b", "type": 0},
    {"first_name": "\u202e\u200b", "last_name": "\U0001f600"},  # valid, if odd: must be 201
    {},
]


async def test_odd_customer_bodies(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    target = await create_customer(client, admin)
    for body in ODD_CUSTOMER_BODIES:
        created = await client.post("/api/customers", json=body, headers=admin)
        updated = await client.put(f"/api/customers/{target['id']}", json=body, headers=admin)
        for response in (created, updated):
            assert response.status_code in {200, 201, 422}, (body, response.text)
            if response.status_code == 422:
                assert_problem(response, 422)
    # Whatever happened, the target customer still reads back.
    assert (await client.get(f"/api/customers/{target['id']}", headers=admin)).status_code == 200


async def test_odd_json_documents(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    documents = [
        b"[" * 5000 + b"]" * 5000,
        b'{"first_name": ' * 3000 + b"1" + b"}" * 3000,
        b'{"first_name": "a", "last_name": "b", "notes": 1e999}',
        b'{"first_name": "a", "last_name": "b"}garbage',
        b'{"first_name": "\xff\xfe", "last_name": "b"}',  # not UTF-8
        "\ufeff{}".encode(),
        b"",
    ]
    for content in documents:
        response = await client.post(
            "/api/customers", content=content, headers={**admin, "content-type": "application/json"}
        )
        assert response.status_code in {400, 422}, (content[:40], response.text)
        assert_problem(response, response.status_code)


ODD_CONTACT_BODIES: list[Any] = [
    {"customer_id": 123, "first_name": "a", "last_name": "b"},
    {"customer_id": [str(uuid.uuid4())], "first_name": "a", "last_name": "b"},
    {"customer_id": None, "first_name": "a", "last_name": "b"},
    {"first_name": "a", "last_name": "b", "is_primary": [True]},
    {"first_name": "a", "last_name": "b", "is_primary": "nope"},
    {"first_name": 1, "last_name": 2},
    [],
]


async def test_odd_contact_bodies(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "P", "last_name": "P"}])
    contact_id = customer["contacts"][0]["id"]
    for odd in ODD_CONTACT_BODIES:
        body = {"customer_id": customer["id"], **odd} if isinstance(odd, dict) and "customer_id" not in odd else odd
        created = await client.post("/api/contacts", json=body, headers=admin)
        updated = await client.put(f"/api/contacts/{contact_id}", json=body, headers=admin)
        for response in (created, updated):
            assert response.status_code == 422, (body, response.text)
            assert_problem(response, 422)
    assert await db.fetchval("SELECT count(*) FROM contacts") == 1
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE is_primary") == 1


ODD_LIST_QUERIES = [
    "page=1e3",
    "limit=1.0",
    "page=1&page=2",
    "sortBy=created_at&sortBy=email",
    "status=active&status=lead",
    "ownerId=%00",
    "search=%00ab",
    "search=%ff%fe",
    "search=" + "%25" * 200,
    "sortOrder=%C3%A4sc",
    "limit=" + "9" * 400,
]


async def test_odd_list_parameters(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for query in ODD_LIST_QUERIES:
        response = await client.get(f"/api/customers?{query}", headers=admin)
        assert response.status_code in {200, 422}, (query, response.text)
        if response.status_code == 200:
            assert set(response.json()) == {"customers", "pagination", "total", "page", "limit", "totalPages"}
        else:
            assert_problem(response, 422)


ODD_PATHS = [
    "/api/customers/search?query=%00%00",
    "/api/customers/search?query=%ff%fe%fd",
    "/api/customers/search?query=" + "%25" * 200,
    "/api/customers/search?query=" + json.dumps("x"),
    "/api/contacts/search?query=ab&customerId=%00",
    "/api/contacts/search?query=%5C%5C%25",
    "/api/contacts/customer/%00",
    "/api/customers/" + "a" * 5000,
    "/api/contacts/" + str(uuid.uuid4()).upper(),
    "/api/customers/" + str(uuid.uuid4()).replace("-", ""),
]


async def test_odd_paths_and_queries(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for path in ODD_PATHS:
        response = await client.get(path, headers=admin)
        assert response.status_code in {200, 404, 422}, (path, response.text)
