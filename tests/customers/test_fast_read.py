"""The plain reads answered below the framework (crm.fastpath, crm.*.fast_read).

They must answer the plain success exactly as the application would (same body, same
headers) and leave every other case to the application. The middleware is driven here
with a real downstream ASGI app that records whether it was called, so each test shows
which of the two answered.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.customers.fastpath_support import Downstream, drive
from tests.helpers import TokenFactory, create_customer


async def test_fast_answer_is_the_applications_answer(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    headers = tokens.headers("employee")
    customer = await create_customer(
        client, headers, contacts=[{"first_name": "Olena", "last_name": "Bondar", "email": "o@example.com"}]
    )
    path = f"/api/customers/{customer['id']}"
    reader = tokens.headers("manager")
    # The manager's token is new to the process: the application answers and remembers it.
    slow = await client.get(path, headers=reader)
    assert slow.status_code == 200
    downstream, fast = await drive(app, path, reader)
    assert downstream.calls == 0, "the remembered token should have been answered directly"
    assert fast["status"] == 200
    assert fast["body"] == slow.content
    assert fast["headers"][b"etag"].decode() == slow.headers["etag"]
    assert fast["headers"][b"content-type"].decode() == slow.headers["content-type"]
    assert int(fast["headers"][b"content-length"]) == len(slow.content)
    assert json.loads(fast["body"])["contacts"][0]["first_name"] == "Olena"


async def test_whole_stack_serves_repeated_reads_identically(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    path = f"/api/customers/{customer['id']}"
    answers = [await client.get(path, headers=admin) for _ in range(2)]
    assert [r.status_code for r in answers] == [200, 200]
    assert answers[0].content == answers[1].content
    # The request middleware still wraps the fast answer.
    assert answers[1].headers["x-request-id"]
    assert answers[1].headers["x-content-type-options"] == "nosniff"


async def test_a_token_never_verified_goes_to_the_application(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    customer = await create_customer(client, tokens.headers("admin"))
    downstream, answer = await drive(app, f"/api/customers/{customer['id']}", tokens.headers("admin"))
    assert downstream.calls == 1
    assert answer["status"] == 299


@pytest.mark.parametrize(
    "path_of",
    [
        lambda cid: f"/api/customers/{uuid.uuid4()}",  # no such customer: the application's 404
        lambda cid: f"/api/customers/{cid.replace('-', '')}".ljust(51, "0"),  # 51 chars, not an id
        lambda cid: f"/api/customers/{cid[:-1]}g",  # malformed: the application's 422
        lambda cid: "/api/customers/segments-and-more-than-thirty-six-ch",
    ],
    ids=["missing", "not-canonical", "malformed", "other-route"],
)
async def test_anything_but_a_found_customer_goes_to_the_application(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], path_of: Any
) -> None:
    customer = await create_customer(client, admin)  # also makes the admin's token known
    downstream, _ = await drive(app, path_of(customer["id"]), admin)
    assert downstream.calls == 1


async def test_expired_remembered_token_goes_to_the_application(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    expires = int(time.time()) + 2
    headers = tokens.headers("admin", exp=expires)
    customer = await create_customer(client, headers)
    path = f"/api/customers/{customer['id']}"
    downstream, _ = await drive(app, path, headers)
    assert downstream.calls == 0
    await asyncio.sleep(expires - time.time() + 0.05)
    # Past its exp the token is forgotten: the application sees it, and refuses it.
    downstream, _ = await drive(app, path, headers)
    assert downstream.calls == 1
    assert (await client.get(path, headers=headers)).status_code == 401


async def test_a_role_without_the_permission_goes_to_the_application(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    path = f"/api/customers/{customer['id']}"
    auditor = tokens.headers("auditor")  # a role the CRM grants nothing
    assert (await client.get(path, headers=auditor)).status_code == 403
    downstream, _ = await drive(app, path, auditor)
    assert downstream.calls == 1


async def test_a_connection_killed_by_the_server_is_replaced(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    path = f"/api/customers/{customer['id']}"
    downstream, _ = await drive(app, path, admin)  # leaves an idle connection in the read pool
    assert downstream.calls == 0
    killed = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'crm-read' AND datname = current_database()"
    )
    assert killed >= 1
    # Whether the pool notices the loss before handing the connection out (a fresh one) or the
    # statement fails on it (the application answers), the caller sees no error...
    assert (await client.get(path, headers=admin)).status_code == 200
    # ...and the pool serves fast reads again.
    downstream, answer = await drive(app, path, admin)
    assert (downstream.calls, answer["status"]) == (0, 200)


async def test_a_read_pool_that_cannot_serve_leaves_the_request_to_the_application(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    path = f"/api/customers/{customer['id']}"
    await app.state.read_pool.close()
    downstream, _ = await drive(app, path, admin)
    assert downstream.calls == 1


async def _slow_then_fast(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, path: str
) -> tuple[httpx.Response, Downstream, dict[str, Any]]:
    """The application's answer (a token new to the process), then the fast path's (now remembered)."""
    reader = tokens.headers("employee", user_id=uuid.uuid4())
    slow = await client.get(path, headers=reader)
    downstream, fast = await drive(app, path, reader)
    return slow, downstream, fast


@pytest.mark.parametrize(
    "path",
    [
        "/api/customers",
        "/api/customers?limit=2",
        "/api/customers?page=2&limit=2",
        "/api/customers?limit=3&page=1",
        "/api/customers/segments",
        "/api/interactions/statistics",
    ],
)
async def test_plain_reads_answer_what_the_application_answers(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str], path: str
) -> None:
    for status in ("active", "lead", "active", "inactive", "prospect"):
        customer = await create_customer(client, admin, status=status, contacts=[{"first_name": "K", "last_name": "C"}])
        body = {"customer_id": customer["id"], "type": "call", "subject": "Hello"}
        assert (await client.post("/api/interactions", json=body, headers=admin)).status_code == 201
    slow, downstream, fast = await _slow_then_fast(app, client, tokens, path)
    assert slow.status_code == 200, slow.text
    assert downstream.calls == 0, "a plain read with a remembered token should not reach the application"
    assert fast["status"] == 200
    assert fast["body"] == slow.content
    assert fast["headers"][b"content-type"].decode() == slow.headers["content-type"]


async def test_a_cursor_page_is_answered_like_the_application(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str]
) -> None:
    for _ in range(5):
        await create_customer(client, admin)
    first = await client.get("/api/customers?limit=2", headers=admin)
    cursor = first.json()["pagination"]["nextCursor"]
    slow, downstream, fast = await _slow_then_fast(app, client, tokens, f"/api/customers?limit=2&cursor={cursor}")
    assert (downstream.calls, fast["status"]) == (0, 200)
    assert fast["body"] == slow.content


@pytest.mark.parametrize(
    "path",
    [
        "/api/customers?sortBy=last_name",  # anything beyond page/limit/cursor
        "/api/customers?status=active",
        "/api/customers?limit=0",
        "/api/customers?limit=101",
        "/api/customers?page=01",
        "/api/customers?limit=10&limit=20",
        "/api/customers?limit",
        "/api/customers?cursor=not-a-cursor",
        "/api/customers/segments?x=1",
        "/api/interactions/statistics?startDate=2025-01-01",
        "/api/customers/search?query=ab&page=2",  # search takes query and limit only
    ],
)
async def test_anything_but_a_plain_read_goes_to_the_application(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], path: str
) -> None:
    await create_customer(client, admin)  # makes the admin's token known
    downstream, _ = await drive(app, path, admin)
    assert downstream.calls == 1
