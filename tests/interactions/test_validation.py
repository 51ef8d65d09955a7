"""Every body rule of POST and PUT /api/interactions: bad input is a 422 naming the field, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import assert_problem, create_customer
from tests.interactions.support import create_contact, create_interaction

# Each table runs in one test (one database): a database per case would cost more than the case.
# (case, body fields that override a valid body, the field the 422 must name)
BAD_CREATE_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown type", {"type": "visit"}, "type"),
    ("null type", {"type": None}, "type"),
    ("empty subject", {"subject": ""}, "subject"),
    ("blank subject", {"subject": "   "}, "subject"),
    ("subject over 255", {"subject": "x" * 256}, "subject"),
    ("null subject", {"subject": None}, "subject"),
    ("numeric subject", {"subject": 42}, "subject"),
    ("NUL in subject", {"subject": "bad\x00byte"}, "subject"),
    ("NUL in description", {"description": "bad\x00byte"}, "description"),
    ("description over 10000", {"description": "x" * 10_001}, "description"),
    ("unparseable date", {"date": "yesterday"}, "date"),
    ("impossible date", {"date": "2025-02-30T10:00:00Z"}, "date"),
    ("date out of range in UTC", {"date": "0001-01-01T00:00:00+05:00"}, "date"),
    ("malformed contact id", {"contact_id": "nope"}, "contact_id"),
    ("malformed customer id", {"customer_id": "nope"}, "customer_id"),
    ("null customer id", {"customer_id": None}, "customer_id"),
]

READ_ONLY = ["id", "user_id", "created_at", "updated_at", "version", "customer"]


@pytest.fixture
async def customer(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    return await create_customer(client, admin)


async def test_create_rejects_bad_fields(
    client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, Any], db: asyncpg.Connection[Any]
) -> None:
    for case, override, field in BAD_CREATE_FIELDS:
        body = {"customer_id": customer["id"], "type": "call", "subject": "ok", **override}
        response = await client.post("/api/interactions", json=body, headers=admin)
        assert response.status_code == 422, (case, response.text)
        assert_problem(response, 422, field)
    assert await db.fetchval("SELECT count(*) FROM interactions") == 0


async def test_create_requires_fields(
    client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, Any]
) -> None:
    for field in ("customer_id", "type", "subject"):
        body = {"customer_id": customer["id"], "type": "call", "subject": "ok"}
        del body[field]
        problem = assert_problem(await client.post("/api/interactions", json=body, headers=admin), 422, field)
        assert problem["errors"] == [{"field": field, "message": "field required"}]


async def test_create_rejects_read_only_and_unknown_fields(
    client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, Any], db: asyncpg.Connection[Any]
) -> None:
    for field in [*READ_ONLY, "priority"]:
        body = {"customer_id": customer["id"], "type": "call", "subject": "ok", field: str(uuid.uuid4())}
        problem = assert_problem(await client.post("/api/interactions", json=body, headers=admin), 422, field)
        message = "unknown field" if field == "priority" else "read-only field"
        assert {"field": field, "message": message} in problem["errors"]
    assert await db.fetchval("SELECT count(*) FROM interactions") == 0


async def test_create_for_unknown_customer_is_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = {"customer_id": str(uuid.uuid4()), "type": "call", "subject": "ok"}
    problem = assert_problem(await client.post("/api/interactions", json=body, headers=admin), 404)
    assert "customer" in problem["detail"]


async def test_create_with_contact_of_another_customer(
    client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, Any]
) -> None:
    other = await create_customer(client, admin)
    foreign = await create_contact(client, admin, other["id"])
    body = {"customer_id": customer["id"], "type": "call", "subject": "ok", "contact_id": foreign["id"]}
    assert_problem(await client.post("/api/interactions", json=body, headers=admin), 422, "contact_id")


async def test_create_with_unknown_contact(
    client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, Any]
) -> None:
    body = {"customer_id": customer["id"], "type": "call", "subject": "ok", "contact_id": str(uuid.uuid4())}
    assert_problem(await client.post("/api/interactions", json=body, headers=admin), 422, "contact_id")


async def test_create_malformed_json_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/api/interactions", content=b'{"subject": ', headers={**admin, "Content-Type": "application/json"}
    )
    assert_problem(response, 400)


async def test_subject_boundaries(client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, Any]) -> None:
    assert (await create_interaction(client, admin, customer["id"], subject="x"))["subject"] == "x"
    assert (await create_interaction(client, admin, customer["id"], subject="я" * 255))["subject"] == "я" * 255


# --- PUT ---


@pytest.fixture
async def interaction(client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, Any]) -> dict[str, Any]:
    return await create_interaction(client, admin, customer["id"], description="keep me")


BAD_UPDATE_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("null type", {"type": None}, "type"),
    ("null subject", {"subject": None}, "subject"),
    ("null date", {"date": None}, "date"),
    ("unknown type", {"type": "fax"}, "type"),
    ("blank subject", {"subject": " "}, "subject"),
    ("subject over 255", {"subject": "x" * 256}, "subject"),
    ("NUL in subject", {"subject": "a\x00"}, "subject"),
    ("unparseable date", {"date": "not a date"}, "date"),
    ("set user_id", {"user_id": str(uuid.uuid4())}, "user_id"),
    ("set version", {"version": 7}, "version"),
    ("set id", {"id": str(uuid.uuid4())}, "id"),
    ("set created_at", {"created_at": "2025-01-01T00:00:00Z"}, "created_at"),
    ("null customer", {"customer_id": None}, "customer_id"),
    ("unknown field", {"priority": "high"}, "priority"),
]


async def test_update_rejects_bad_fields(
    client: httpx.AsyncClient, admin: dict[str, str], interaction: dict[str, Any]
) -> None:
    url = f"/api/interactions/{interaction['id']}"
    for case, body, field in BAD_UPDATE_FIELDS:
        response = await client.put(url, json=body, headers=admin)
        assert response.status_code == 422, (case, response.text)
        assert_problem(response, 422, field)
    after = (await client.get(url, headers=admin)).json()
    assert (after["version"], after["subject"], after["description"]) == (1, interaction["subject"], "keep me")


async def test_update_cannot_move_to_another_customer(
    client: httpx.AsyncClient, admin: dict[str, str], interaction: dict[str, Any]
) -> None:
    other = await create_customer(client, admin)
    url = f"/api/interactions/{interaction['id']}"
    problem = assert_problem(await client.put(url, json={"customer_id": other["id"]}, headers=admin), 422)
    assert problem["errors"][0]["field"] == "customer_id"
    assert (await client.get(url, headers=admin)).json()["customer_id"] == interaction["customer_id"]


async def test_update_with_contact_of_another_customer(
    client: httpx.AsyncClient, admin: dict[str, str], interaction: dict[str, Any]
) -> None:
    other = await create_customer(client, admin)
    foreign = await create_contact(client, admin, other["id"])
    url = f"/api/interactions/{interaction['id']}"
    assert_problem(await client.put(url, json={"contact_id": foreign["id"]}, headers=admin), 422, "contact_id")
    assert (await client.get(url, headers=admin)).json()["contact_id"] is None
