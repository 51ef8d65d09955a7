"""Role x action on every customer route: admin and manager do all, employee all but delete, others nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from tests.helpers import TokenFactory, assert_problem, create_customer, customer_body

Call = Callable[[httpx.AsyncClient, dict[str, str], str], Awaitable[httpx.Response]]

# Each route with the action it needs; every call is valid, so only the role decides the outcome.
ROUTES: dict[str, tuple[str, Call]] = {
    "list": ("read", lambda c, h, cid: c.get("/api/customers", headers=h)),
    "search": ("read", lambda c, h, cid: c.get("/api/customers/search", params={"query": "ivan"}, headers=h)),
    "segments": ("read", lambda c, h, cid: c.get("/api/customers/segments", headers=h)),
    "get": ("read", lambda c, h, cid: c.get(f"/api/customers/{cid}", headers=h)),
    "create": ("create", lambda c, h, cid: c.post("/api/customers", json=customer_body(), headers=h)),
    "update": ("update", lambda c, h, cid: c.put(f"/api/customers/{cid}", json={"city": "Dnipro"}, headers=h)),
    "delete": ("delete", lambda c, h, cid: c.delete(f"/api/customers/{cid}", headers=h)),
}
SUCCESS = {"read": 200, "create": 201, "update": 200, "delete": 204}
ALLOWED = {
    "admin": {"read", "create", "update", "delete"},
    "manager": {"read", "create", "update", "delete"},
    "employee": {"read", "create", "update"},
    "guest": set(),
    "Admin": set(),  # roles are case-sensitive names, not patterns
    "": set(),
}


@pytest.mark.parametrize("role", list(ALLOWED))
@pytest.mark.parametrize("route", list(ROUTES))
async def test_role_matrix(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tokens: TokenFactory,
    db: asyncpg.Connection[Any],
    role: str,
    route: str,
) -> None:
    customer = await create_customer(client, admin)
    action, call = ROUTES[route]
    headers = tokens.headers(role, uuid.uuid4())
    before = await db.fetchval("SELECT count(*) FROM customers")

    response = await call(client, headers, customer["id"])

    if action in ALLOWED[role]:
        assert response.status_code == SUCCESS[action], response.text
    else:
        problem = assert_problem(response, 403)
        assert action in problem["detail"]
        # A refused write changed nothing.
        assert await db.fetchval("SELECT count(*) FROM customers") == before
        row = await db.fetchrow("SELECT city, version FROM customers WHERE id = $1", uuid.UUID(customer["id"]))
        assert row is not None
        assert (row["city"], row["version"]) == (None, 1)


async def test_token_without_role_is_403(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    claims = tokens.claims("admin")
    del claims["role"]
    headers = {"Authorization": f"Bearer {jwt.encode(claims, tokens.secret, algorithm='HS256')}"}
    assert_problem(await client.get("/api/customers", headers=headers), 403)


@pytest.mark.parametrize("route", list(ROUTES))
async def test_no_token_is_401(client: httpx.AsyncClient, admin: dict[str, str], route: str) -> None:
    customer = await create_customer(client, admin)
    response = await ROUTES[route][1](client, {}, customer["id"])
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_employee_owns_what_they_create_and_can_update_others(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str]
) -> None:
    employee_id = uuid.uuid4()
    employee = tokens.headers("employee", employee_id)
    mine = await create_customer(client, employee)
    assert mine["owner_id"] == str(employee_id)
    theirs = await create_customer(client, admin)
    response = await client.put(f"/api/customers/{theirs['id']}", json={"notes": "called"}, headers=employee)
    assert response.status_code == 200
    assert response.json()["notes"] == "called"
