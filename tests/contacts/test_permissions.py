"""Role x action on every contact route: admin and manager do all, employee all but delete, others nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.contacts.support import create_contact
from tests.helpers import TokenFactory, assert_problem, create_customer

# (client, headers, customer id, contact id) -> response
Call = Callable[[httpx.AsyncClient, dict[str, str], str, str], Awaitable[httpx.Response]]


def _new(customer_id: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "first_name": "New", "last_name": "Contact", "is_primary": True}


ROUTES: dict[str, tuple[str, Call]] = {
    "list": ("read", lambda c, h, cu, co: c.get(f"/api/contacts/customer/{cu}", headers=h)),
    "search": ("read", lambda c, h, cu, co: c.get("/api/contacts/search", params={"query": "taras"}, headers=h)),
    "get": ("read", lambda c, h, cu, co: c.get(f"/api/contacts/{co}", headers=h)),
    "create": ("create", lambda c, h, cu, co: c.post("/api/contacts", json=_new(cu), headers=h)),
    "update": ("update", lambda c, h, cu, co: c.put(f"/api/contacts/{co}", json={"position": "Boss"}, headers=h)),
    "primary": ("update", lambda c, h, cu, co: c.put(f"/api/contacts/{co}/primary", headers=h)),
    "delete": ("delete", lambda c, h, cu, co: c.delete(f"/api/contacts/{co}", headers=h)),
}
SUCCESS = {"read": 200, "create": 201, "update": 200, "delete": 204}
ALLOWED = {
    "admin": {"read", "create", "update", "delete"},
    "manager": {"read", "create", "update", "delete"},
    "employee": {"read", "create", "update"},
    "guest": set(),
    "superuser": set(),
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
    await create_contact(client, admin, customer["id"])  # the primary
    target = await create_contact(client, admin, customer["id"], first_name="Target")
    action, call = ROUTES[route]
    snapshot = await db.fetch("SELECT id, position, is_primary, version FROM contacts ORDER BY id")

    response = await call(client, tokens.headers(role, uuid.uuid4()), customer["id"], target["id"])

    if action in ALLOWED[role]:
        assert response.status_code == SUCCESS[action], response.text
    else:
        problem = assert_problem(response, 403)
        assert role in problem["detail"]
        assert await db.fetch("SELECT id, position, is_primary, version FROM contacts ORDER BY id") == snapshot


@pytest.mark.parametrize("route", list(ROUTES))
async def test_no_token_is_401(client: httpx.AsyncClient, admin: dict[str, str], route: str) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"])
    response = await ROUTES[route][1](client, {}, customer["id"], contact["id"])
    assert_problem(response, 401)


async def test_employee_cannot_delete_customer_or_contact(
    client: httpx.AsyncClient, admin: dict[str, str], employee: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, employee)
    contact = await create_contact(client, employee, customer["id"])
    assert_problem(await client.delete(f"/api/contacts/{contact['id']}", headers=employee), 403)
    assert_problem(await client.delete(f"/api/customers/{customer['id']}", headers=employee), 403)
    assert await db.fetchval("SELECT count(*) FROM contacts") == 1
    assert await db.fetchval("SELECT count(*) FROM customers") == 1
    # What they created, an admin can delete.
    assert (await client.delete(f"/api/customers/{customer['id']}", headers=admin)).status_code == 204
