"""The two history lists: filters, cursors, permissions, 422s, and no route that mutates history."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette

from crm.main import ENDPOINTS
from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.history.support import history


async def _busy_customer(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """A customer with a contact, an interaction and a few updates: 6 entries."""
    customer = await create_customer(client, headers, status="lead", contacts=[{"first_name": "A", "last_name": "B"}])
    url = f"/api/customers/{customer['id']}"
    for status in ("prospect", "active", "customer"):
        assert (await client.put(url, json={"status": status}, headers=headers)).status_code == 200
    body = {"customer_id": customer["id"], "type": "call", "subject": "s"}
    assert (await client.post("/api/interactions", json=body, headers=headers)).status_code == 201
    return customer


async def test_customer_history_filters(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    headers = tokens.headers("manager", alice)
    customer = await _busy_customer(client, headers)
    other = await create_customer(client, headers)
    await client.put(f"/api/customers/{customer['id']}", json={"city": "Lviv"}, headers=tokens.headers("admin", bob))

    everything = await history(client, headers, customer["id"])
    assert len(everything) == 7
    assert {e["customer_id"] for e in everything} == {customer["id"]}  # not the other customer's
    assert not await _ids_of(client, headers, customer["id"], customer_id_of=other["id"])
    assert [e["entity"] for e in await history(client, headers, customer["id"], entity="interaction")] == [
        "interaction"
    ]
    assert len(await history(client, headers, customer["id"], action="created")) == 3
    status_changes = await history(client, headers, customer["id"], field="status")
    assert [e["changes"]["status"]["new"] for e in status_changes] == ["customer", "active", "prospect", "lead"]
    [by_bob] = await history(client, headers, customer["id"], userId=str(bob))
    assert by_bob["changes"] == {"city": {"old": None, "new": "Lviv"}}
    assert by_bob["actor"]["role"] == "admin"

    middle = everything[3]["at"]
    newer = await history(client, headers, customer["id"], startDate=middle)
    older = await history(client, headers, customer["id"], endDate=middle)
    assert [e["id"] for e in newer] == [e["id"] for e in everything[:4]]
    assert [e["id"] for e in older] == [e["id"] for e in everything[3:]]


async def _ids_of(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str, customer_id_of: str
) -> list[str]:
    entries = await history(client, headers, customer_id)
    return [e["id"] for e in entries if e["customer_id"] == customer_id_of]


async def test_customer_history_pages_by_cursor_newest_first(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await _busy_customer(client, admin)
    url = f"/api/customers/{customer['id']}/history"
    whole = (await client.get(url, headers=admin)).json()
    assert whole["pagination"] == {"limit": 50, "hasNext": False, "nextCursor": None}
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 4}
    pages = 0
    while True:
        body = (await client.get(url, params=params, headers=admin)).json()
        pages += 1
        assert body["pagination"]["limit"] == 4
        seen += [e["id"] for e in body["history"]]
        if not body["pagination"]["hasNext"]:
            break
        params["cursor"] = body["pagination"]["nextCursor"]
    assert pages == 2
    assert seen == [e["id"] for e in whole["history"]]
    ats = [e["at"] for e in whole["history"]]
    assert ats == sorted(ats, reverse=True)


async def test_who_may_read(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    customer = await create_customer(client, tokens.headers("admin"))
    url = f"/api/customers/{customer['id']}/history"
    for role in ("admin", "manager", "employee"):
        assert (await client.get(url, headers=tokens.headers(role))).status_code == 200, role
    for role in ("admin", "manager"):
        assert (await client.get("/api/history", headers=tokens.headers(role))).status_code == 200, role
    assert_problem(await client.get("/api/history", headers=tokens.headers("employee")), 403)
    assert_problem(await client.get("/api/history", headers=tokens.headers("auditor")), 403)
    assert_problem(await client.get(url, headers=tokens.headers("auditor")), 403)
    assert_problem(await client.get(url), 401)
    assert_problem(await client.get(f"/api/customers/{uuid.uuid4()}/history", headers=tokens.headers("admin")), 404)


async def test_bad_parameters_are_422_naming_them(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    url = f"/api/customers/{customer['id']}/history"
    for params, field in [
        ({"entity": "order"}, "entity"),
        ({"action": "purged"}, "action"),
        ({"field": "password"}, "field"),
        ({"userId": "bob"}, "userId"),
        ({"startDate": "yesterday"}, "startDate"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ]:
        assert_problem(await client.get(url, params=params, headers=admin), 422, field)
    for params, field in [({"entity": "order"}, "entity"), ({"action": "x"}, "action"), ({"limit": "101"}, "limit")]:
        assert_problem(await client.get("/api/history", params=params, headers=admin), 422, field)


async def test_a_cursor_from_another_list_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    first = await _busy_customer(client, admin)
    second = await _busy_customer(client, admin)
    own = (await client.get(f"/api/customers/{first['id']}/history?limit=1", headers=admin)).json()
    global_ = (await client.get("/api/history?limit=1", headers=admin)).json()
    customers = (await client.get("/api/customers?limit=1", headers=admin)).json()
    own_cursor = own["pagination"]["nextCursor"]
    global_cursor = global_["pagination"]["nextCursor"]

    assert (await client.get(f"/api/customers/{first['id']}/history?cursor={own_cursor}", headers=admin)).is_success
    assert (await client.get(f"/api/history?cursor={global_cursor}", headers=admin)).is_success
    for url in (
        f"/api/history?cursor={own_cursor}",
        f"/api/customers/{first['id']}/history?cursor={global_cursor}",
        f"/api/customers/{second['id']}/history?cursor={own_cursor}",
        f"/api/history?cursor={customers['pagination']['nextCursor']}",
    ):
        assert_problem(await client.get(url, headers=admin), 422, "cursor")


async def test_global_history_by_user_and_week(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    mine = await create_customer(client, tokens.headers("manager", alice))
    await create_customer(client, tokens.headers("manager", bob))
    await client.put(f"/api/customers/{mine['id']}", json={"notes": "x"}, headers=tokens.headers("manager", alice))
    # An entry of last month, as an older change would have left it.
    await db.execute(
        "UPDATE history SET at = at - interval '30 days' WHERE action = 'created' AND actor_user_id = $1", alice
    )
    admin = tokens.headers("admin")

    body = (await client.get("/api/history", params={"userId": str(alice)}, headers=admin)).json()
    assert [(e["action"], e["actor"]["user_id"]) for e in body["history"]] == [
        ("updated", str(alice)),
        ("created", str(alice)),
    ]
    week = (
        await client.get(
            "/api/history", params={"userId": str(alice), "startDate": body["history"][0]["at"][:10]}, headers=admin
        )
    ).json()
    assert [e["action"] for e in week["history"]] == ["updated"]
    assert len((await client.get("/api/history", headers=admin)).json()["history"]) == 3
    only_created = await client.get("/api/history", params={"action": "created", "entity": "customer"}, headers=admin)
    assert {e["actor"]["user_id"] for e in only_created.json()["history"]} == {str(alice), str(bob)}


async def test_no_route_changes_or_removes_history(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    history_paths = [e for e in ENDPOINTS if "history" in e.path]
    assert {(e.method, e.path) for e in history_paths} == {
        ("GET", "/api/customers/{customer_id}/history"),
        ("GET", "/api/history"),
    }
    customer = await create_customer(client, admin)
    [entry] = await history(client, admin, customer["id"])
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for url in ("/api/history", f"/api/history/{entry['id']}", f"/api/customers/{customer['id']}/history"):
            response = await client.request(method, url, headers=admin)
            assert response.status_code in {404, 405}, (method, url, response.status_code)
    assert await history(client, admin, customer["id"]) == [entry]
