"""The role -> permission table, and an unknown role refused (403) on every API route."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import get_args

import httpx
import jwt
import pytest

from crm.auth.permissions import Action, Resource, Scope, scope_for
from crm.main import create_app
from tests.auth.support import access_claims, app_client, app_routes, bearer, free_port, make_settings
from tests.conftest import TEST_JWT_SECRET
from tests.helpers import TokenFactory

RESOURCES: tuple[Resource, ...] = get_args(Resource)
ACTIONS: tuple[Action, ...] = get_args(Action)

# The spec's table, written out cell by cell.
# History is read-only (append-only): its one action is "read", for admins and managers.
# The trash is listed ("read": what the caller could restore); restores need "delete" on the record.
# "erase" (erasure on request) is the admins' alone, on customers. The events feed is the admins'
# and managers', the relay's status the admins'. Webhook subscriptions send customers' data to
# outside URLs: admins only.
_NONE: dict[Action, Scope | None] = dict.fromkeys(ACTIONS)
_CRUD = ("read", "create", "update", "delete")
_HISTORY: dict[Action, Scope | None] = {**_NONE, "read": Scope.all}
_FULL: dict[Action, Scope | None] = {**_NONE, **dict.fromkeys(_CRUD, Scope.all)}
_STAFF: dict[Resource, dict[Action, Scope | None]] = {
    "customers": _FULL,
    "contacts": _FULL,
    "interactions": _FULL,
    "history": _HISTORY,
    "trash": {**_NONE, "read": Scope.all},
    "events": _HISTORY,
    "event_relay": _NONE,
    "webhooks": _NONE,
}
EXPECTED: dict[str, dict[Resource, dict[Action, Scope | None]]] = {
    "admin": {**_STAFF, "customers": {**_FULL, "erase": Scope.all}, "event_relay": _HISTORY, "webhooks": _FULL},
    "manager": _STAFF,
    "employee": {
        "history": _NONE,
        "events": _NONE,
        "event_relay": _NONE,
        "webhooks": _NONE,
        "customers": {**_NONE, "read": Scope.all, "create": Scope.all, "update": Scope.all},
        "contacts": {**_NONE, "read": Scope.all, "create": Scope.all, "update": Scope.all},
        "interactions": {**_NONE, "read": Scope.all, "create": Scope.all, "update": Scope.own, "delete": Scope.own},
        "trash": {**_NONE, "read": Scope.own},
    },
}


def test_resources_and_actions_are_the_specs() -> None:
    assert set(RESOURCES) == {
        "customers",
        "contacts",
        "interactions",
        "history",
        "trash",
        "events",
        "event_relay",
        "webhooks",
    }
    assert set(ACTIONS) == {"read", "create", "update", "delete", "erase"}


@pytest.mark.parametrize("role", ["admin", "manager", "employee"])
def test_permission_table(role: str) -> None:
    for resource in RESOURCES:
        for action in ACTIONS:
            assert scope_for(role, resource, action) == EXPECTED[role][resource][action], (role, resource, action)


@pytest.mark.parametrize("role", ["", "auditor", "Admin", "ADMIN", "admin ", "superuser", "root", "employees"])
def test_any_other_role_has_nothing(role: str) -> None:
    assert [scope_for(role, r, a) for r in RESOURCES for a in ACTIONS] == [None] * (len(RESOURCES) * len(ACTIONS))


def api_routes(tmp_path: Path) -> list[tuple[str, str]]:
    app = create_app(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), database_url="postgresql://x@127.0.0.1:1/x")
    return [(method, path) for method, path in app_routes(app) if path.startswith("/api/")]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def test_every_resource_has_routes(tmp_path: Path) -> None:
    paths = {path for _, path in api_routes(tmp_path)}
    for prefix in ("/api/customers", "/api/contacts", "/api/interactions"):
        assert any(p.startswith(prefix) for p in paths), prefix


@pytest.mark.parametrize("role", ["auditor", "", None])
async def test_unknown_role_is_forbidden_on_every_route(tmp_path: Path, database_url: str, role: str | None) -> None:
    routes = api_routes(tmp_path)
    assert len(routes) >= 20, routes
    claims = access_claims("admin")
    claims["role"] = role
    if role is None:
        del claims["role"]
    headers = bearer(jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256"))
    # A real database behind it: a route that forgot its permission check would answer 2xx/404.
    async with app_client(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), database_url) as client:
        for method, path in routes:
            url = concrete(path)
            # Valid-looking query parameters, so that a 403 is not just a validation error in disguise.
            params = {"query": "ivan", "startDate": "2025-01-01", "endDate": "2025-12-31"}
            body: dict[str, object] | None = {} if method in {"POST", "PUT", "PATCH"} else None
            response = await client.request(method, url, headers=headers, params=params, json=body)
            assert response.status_code == 403, (method, path, response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["type"] == "urn:crm:problem:forbidden"


async def test_forbidden_is_problem_json_naming_the_role(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET)
    tokens = TokenFactory(settings)
    async with app_client(settings, f"postgresql://crm@127.0.0.1:{free_port()}/nowhere") as client:
        response = await client.delete(f"/api/customers/{uuid.uuid4()}", headers=tokens.headers("employee"))
    assert response.status_code == 403
    body = response.json()
    assert body["detail"] == "role 'employee' may not delete customers"
    assert body["title"] == "Forbidden"


async def test_employee_reads_with_the_offline_app_reach_the_database(offline: httpx.AsyncClient) -> None:
    # Sanity check of the `offline` fixture the refusal tests rely on: an authorised request
    # gets past auth and fails on the database (503), never a 2xx.
    tokens = TokenFactory(make_settings(Path("."), jwt_secret=TEST_JWT_SECRET))
    response = await offline.get("/api/customers", headers=tokens.headers("employee"))
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:crm:problem:database-unavailable"
