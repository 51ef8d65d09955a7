"""Who may do what with interactions: employees read and create all, but edit only their own."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.interactions.support import create_interaction


async def test_employee_updates_and_deletes_own(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    me = tokens.headers("employee", user_id=uuid.uuid4())
    customer = await create_customer(client, me)
    mine = await create_interaction(client, me, customer["id"])

    updated = await client.put(f"/api/interactions/{mine['id']}", json={"subject": "Mine, edited"}, headers=me)
    assert updated.status_code == 200, updated.text
    assert updated.json()["subject"] == "Mine, edited"

    deleted = await client.delete(f"/api/interactions/{mine['id']}", headers=me)
    assert deleted.status_code == 204
    assert_problem(await client.get(f"/api/interactions/{mine['id']}", headers=me), 404)


async def test_employee_cannot_touch_another_users_interaction(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    author, intruder = uuid.uuid4(), uuid.uuid4()
    author_headers = tokens.headers("employee", user_id=author)
    intruder_headers = tokens.headers("employee", user_id=intruder)
    customer = await create_customer(client, author_headers)
    theirs = await create_interaction(client, author_headers, customer["id"], subject="Theirs")
    url = f"/api/interactions/{theirs['id']}"

    assert_problem(await client.put(url, json={"subject": "Hijacked"}, headers=intruder_headers), 403)
    assert_problem(await client.delete(url, headers=intruder_headers), 403)
    # Claiming authorship through the body is refused before ownership is even considered.
    problem = assert_problem(
        await client.put(url, json={"user_id": str(intruder)}, headers=intruder_headers), 422, "user_id"
    )
    assert {"field": "user_id", "message": "read-only field"} in problem["errors"]
    assert_problem(await client.put(url, json={"user_id": str(author)}, headers=author_headers), 422, "user_id")

    # Reading someone else's interaction is allowed.
    got = await client.get(url, headers=intruder_headers)
    assert got.status_code == 200
    row = await db.fetchrow("SELECT subject, user_id, version FROM interactions WHERE id = $1", uuid.UUID(theirs["id"]))
    assert row is not None
    assert (row["subject"], row["user_id"], row["version"]) == ("Theirs", author, 1)


async def test_unknown_interaction_is_404_before_ownership(client: httpx.AsyncClient, employee: dict[str, str]) -> None:
    url = f"/api/interactions/{uuid.uuid4()}"
    assert_problem(await client.put(url, json={"subject": "x"}, headers=employee), 404)
    assert_problem(await client.delete(url, headers=employee), 404)


async def test_manager_and_admin_edit_anyones_interaction(
    client: httpx.AsyncClient, employee: dict[str, str], manager: dict[str, str], admin: dict[str, str]
) -> None:
    customer = await create_customer(client, employee)
    first = await create_interaction(client, employee, customer["id"])
    second = await create_interaction(client, employee, customer["id"])

    updated = await client.put(f"/api/interactions/{first['id']}", json={"subject": "By manager"}, headers=manager)
    assert updated.status_code == 200
    # The author stays the employee: editing does not transfer authorship.
    assert updated.json()["user_id"] == first["user_id"]
    assert (await client.delete(f"/api/interactions/{first['id']}", headers=manager)).status_code == 204
    assert (await client.put(f"/api/interactions/{second['id']}", json={"type": "note"}, headers=admin)).json()[
        "type"
    ] == "note"
    assert (await client.delete(f"/api/interactions/{second['id']}", headers=admin)).status_code == 204


async def test_other_roles_and_anonymous_are_refused(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    existing = await create_interaction(client, admin, customer["id"])
    guest = tokens.headers("guest")
    body = {"customer_id": customer["id"], "type": "call", "subject": "x"}
    requests = [
        ("GET", f"/api/interactions/{existing['id']}", None),
        ("GET", f"/api/interactions/customer/{customer['id']}", None),
        ("GET", "/api/interactions/date-range", None),
        ("GET", "/api/interactions/statistics", None),
        ("GET", "/api/interactions/search?query=intro", None),
        ("POST", "/api/interactions", body),
        ("PUT", f"/api/interactions/{existing['id']}", {"subject": "y"}),
        ("DELETE", f"/api/interactions/{existing['id']}", None),
    ]
    for method, url, json in requests:
        assert_problem(await client.request(method, url, json=json, headers=guest), 403)
        anonymous = await client.request(method, url, json=json)
        assert_problem(anonymous, 401)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get(f"/api/interactions/{existing['id']}", headers=admin)).json()["version"] == 1
