"""Create, read, update and delete one interaction, through HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.interactions.support import create_contact, create_interaction

OUT_FIELDS = {
    "id",
    "customer_id",
    "contact_id",
    "user_id",
    "type",
    "subject",
    "description",
    "date",
    "version",
    "created_at",
    "updated_at",
}


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


async def test_create_sets_author_from_token_and_defaults_date(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    author = uuid.uuid4()
    headers = tokens.headers("employee", user_id=author)
    customer = await create_customer(client, headers)
    before = datetime.now(UTC)

    response = await client.post(
        "/api/interactions",
        json={"customer_id": customer["id"], "type": "meeting", "subject": "  Kick-off  ", "description": "Agenda"},
        headers=headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == OUT_FIELDS
    assert response.headers["location"] == f"/api/interactions/{body['id']}"
    assert body["user_id"] == str(author)
    assert body["customer_id"] == customer["id"]
    assert body["contact_id"] is None
    assert (body["type"], body["subject"], body["description"]) == ("meeting", "Kick-off", "Agenda")
    assert body["version"] == 1
    assert before - timedelta(seconds=5) < _parse(body["date"]) < datetime.now(UTC) + timedelta(seconds=5)
    row = await db.fetchrow("SELECT user_id, subject FROM interactions WHERE id = $1", uuid.UUID(body["id"]))
    assert row is not None
    assert (row["user_id"], row["subject"]) == (author, "Kick-off")


async def test_create_with_contact_and_explicit_date(client: httpx.AsyncClient, manager: dict[str, str]) -> None:
    customer = await create_customer(client, manager)
    contact = await create_contact(client, manager, customer["id"])

    body = await create_interaction(
        client, manager, customer["id"], contact_id=contact["id"], date="2025-03-01T23:30:00-02:00", type="email"
    )

    assert body["contact_id"] == contact["id"]
    # Stored and rendered in UTC.
    assert _parse(body["date"]) == datetime(2025, 3, 2, 1, 30, tzinfo=UTC)
    assert body["date"].startswith("2025-03-02T01:30:00")


async def test_naive_date_is_utc(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    body = await create_interaction(client, admin, customer["id"], date="2025-06-15T10:00:00")
    assert _parse(body["date"]) == datetime(2025, 6, 15, 10, tzinfo=UTC)


async def test_get_includes_customer_summary(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, company_name="Acme", type="business")
    created = await create_interaction(client, admin, customer["id"])

    response = await client.get(f"/api/interactions/{created['id']}", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in OUT_FIELDS} == created
    assert body["customer"] == {
        "id": customer["id"],
        "first_name": "Ivan",
        "last_name": "Petrenko",
        "company_name": "Acme",
        "email": customer["email"],
        "status": "active",
        "type": "business",
        "name": "Acme",
    }


async def test_get_unknown_and_malformed_id(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_problem(await client.get(f"/api/interactions/{uuid.uuid4()}", headers=admin), 404)
    assert_problem(await client.get("/api/interactions/not-a-uuid", headers=admin), 422, "interaction_id")


async def test_update_is_partial_and_null_clears_optional_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"])
    created = await create_interaction(
        client, admin, customer["id"], contact_id=contact["id"], description="first", date="2025-01-01T09:00:00Z"
    )

    response = await client.put(
        f"/api/interactions/{created['id']}",
        json={"subject": "Follow-up", "description": None, "contact_id": None, "customer_id": customer["id"]},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["subject"] == "Follow-up"
    assert body["description"] is None
    assert body["contact_id"] is None
    # Untouched fields keep their values.
    assert (body["type"], body["date"], body["user_id"]) == (created["type"], created["date"], created["user_id"])
    assert body["version"] == 2
    assert _parse(body["updated_at"]) >= _parse(created["updated_at"])
    got = (await client.get(f"/api/interactions/{created['id']}", headers=admin)).json()
    assert (got["subject"], got["description"], got["version"]) == ("Follow-up", None, 2)


async def test_update_type_date_and_contact(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"])
    created = await create_interaction(client, admin, customer["id"])

    response = await client.put(
        f"/api/interactions/{created['id']}",
        json={"type": "task", "date": "2024-12-31", "contact_id": contact["id"]},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["type"], body["contact_id"]) == ("task", contact["id"])
    assert _parse(body["date"]) == datetime(2024, 12, 31, tzinfo=UTC)


async def test_update_unknown_interaction(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.put(f"/api/interactions/{uuid.uuid4()}", json={"subject": "x"}, headers=admin)
    assert_problem(response, 404)


async def test_delete(client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]) -> None:
    customer = await create_customer(client, admin)
    created = await create_interaction(client, admin, customer["id"])
    kept = await create_interaction(client, admin, customer["id"])

    response = await client.delete(f"/api/interactions/{created['id']}", headers=admin)

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"/api/interactions/{created['id']}", headers=admin), 404)
    assert_problem(await client.delete(f"/api/interactions/{created['id']}", headers=admin), 404)
    assert await db.fetchval("SELECT array_agg(id::text) FROM interactions") == [kept["id"]]


async def test_deleting_customer_deletes_its_interactions(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    created = await create_interaction(client, admin, customer["id"])

    assert (await client.delete(f"/api/customers/{customer['id']}", headers=admin)).status_code == 204

    assert_problem(await client.get(f"/api/interactions/{created['id']}", headers=admin), 404)
    assert await db.fetchval("SELECT count(*) FROM interactions") == 0


async def test_deleting_contact_keeps_interaction_unattributed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"])
    created = await create_interaction(client, admin, customer["id"], contact_id=contact["id"])

    assert (await client.delete(f"/api/contacts/{contact['id']}", headers=admin)).status_code == 204

    got = (await client.get(f"/api/interactions/{created['id']}", headers=admin)).json()
    assert got["contact_id"] is None
    assert got["subject"] == created["subject"]


async def test_concurrent_updates_all_apply(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    created = await create_interaction(client, admin, customer["id"])
    url = f"/api/interactions/{created['id']}"

    # Each request reads the row after the previous writer committed, so none fails its version check.
    responses = await asyncio.gather(*(client.put(url, json={"subject": f"Edit {n}"}, headers=admin) for n in range(8)))

    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses if r.status_code != 200]
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 10))
    assert (await client.get(url, headers=admin)).json()["version"] == 9


async def test_concurrent_update_and_delete(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    created = await create_interaction(client, admin, customer["id"])
    url = f"/api/interactions/{created['id']}"

    responses = await asyncio.gather(
        *(client.put(url, json={"subject": f"Edit {n}"}, headers=admin) for n in range(4)),
        client.delete(url, headers=admin),
        client.delete(url, headers=admin),
    )

    statuses = [r.status_code for r in responses]
    assert set(statuses[:4]) <= {200, 404}, statuses
    assert sorted(statuses[4:]) == [204, 404], statuses
    assert_problem(await client.get(url, headers=admin), 404)
