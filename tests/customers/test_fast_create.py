"""The plain customer create answered below the framework (crm.fastpath, crm.customers.fast_create).

It must answer what the application answers for the same body (same fields in the same
order, same headers, same rows and counters in the database) and leave everything else,
with the body intact, to the application. The middleware is driven with a downstream app
that records what it was asked and the body it could still read.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from crm.customers import fast_create
from tests.customers.fastpath_support import Downstream, drive
from tests.helpers import TokenFactory, assert_problem, customer_body


async def post(
    app: FastAPI, body: bytes, headers: dict[str, str], *, chunks: int = 1, content_length: bool = True
) -> tuple[Downstream, dict[str, Any]]:
    """One POST /api/customers through FastPath alone (its plain create only)."""
    return await drive(
        app,
        "/api/customers",
        headers,
        (),
        method="POST",
        body=body,
        chunks=chunks,
        content_length=content_length,
        creates=fast_create.CREATES,
    )


def json_headers(auth: dict[str, str]) -> dict[str, str]:
    return {**auth, "Content-Type": "application/json"}


async def remembered(client: httpx.AsyncClient, tokens: TokenFactory, role: str = "employee") -> dict[str, str]:
    """Headers with a token the application has verified (and so remembers)."""
    headers = tokens.headers(role, user_id=uuid.uuid4())
    assert (await client.get("/api/customers/segments", headers=headers)).status_code == 200
    return headers


_VARYING = {"id", "email", "created_at", "updated_at"}


async def test_fast_create_answers_what_the_application_answers(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    headers = await remembered(client, tokens)
    fields = {"phone": "+380 67 123 4567", "status": "lead", "type": "business", "company_name": "Агро Захід"}
    # The application's answer: a media type with parameters is the application's to parse.
    slow = await client.post(
        "/api/customers",
        content=json.dumps(customer_body(**fields)),
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert slow.status_code == 201
    downstream, fast = await post(app, json.dumps(customer_body(**fields)).encode(), json_headers(headers))

    assert downstream.bodies == [], "a plain create of a remembered token should be answered directly"
    assert fast["status"] == 201
    slow_doc, fast_doc = slow.json(), json.loads(fast["body"])
    assert list(fast_doc) == list(slow_doc)
    assert {k: v for k, v in fast_doc.items() if k not in _VARYING} == {
        k: v for k, v in slow_doc.items() if k not in _VARYING
    }
    assert len(fast_doc["created_at"]) == len(slow_doc["created_at"])
    assert fast["headers"][b"location"].decode() == f"/api/customers/{fast_doc['id']}"
    assert fast["headers"][b"etag"].decode() == slow.headers["etag"]
    assert fast["headers"][b"content-type"].decode() == slow.headers["content-type"]
    assert int(fast["headers"][b"content-length"]) == len(fast["body"])
    # Stored like the application's: readable, counted in the segments.
    shown = await client.get(f"/api/customers/{fast_doc['id']}", headers=headers)
    assert shown.json() == fast_doc
    counted = await db.fetchval(
        "SELECT sum(n) FROM customer_segment_counts WHERE status = 'lead' AND type = 'business'"
    )
    assert counted == 2


async def test_owner_defaults_to_the_creator_and_can_be_named(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    creator = uuid.uuid4()
    headers = tokens.headers("manager", user_id=creator)
    assert (await client.get("/api/customers/segments", headers=headers)).status_code == 200
    _, own = await post(app, json.dumps(customer_body()).encode(), json_headers(headers))
    owner = uuid.uuid4()
    _, named = await post(app, json.dumps(customer_body(owner_id=str(owner))).encode(), json_headers(headers))
    assert json.loads(own["body"])["owner_id"] == str(creator)
    assert json.loads(named["body"])["owner_id"] == str(owner)


async def test_the_whole_stack_creates_then_refuses_the_same_email(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    headers = await remembered(client, tokens)
    body = customer_body(email="Same.Person@example.com")
    first = await client.post("/api/customers", json=body, headers=headers)
    assert first.status_code == 201
    assert first.headers["x-request-id"]
    again = await client.post("/api/customers", json={**body, "email": "same.person@EXAMPLE.com"}, headers=headers)
    assert_problem(again, 409)
    assert await db.fetchval("SELECT count(*) FROM customers") == 1


async def test_a_duplicate_email_goes_to_the_application_with_its_body(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    headers = await remembered(client, tokens)
    body = json.dumps(customer_body(email="taken@example.com")).encode()
    _, created = await post(app, body, json_headers(headers))
    assert created["status"] == 201
    downstream, answer = await post(app, body, json_headers(headers))
    assert answer["status"] == 299
    assert downstream.bodies == [body]
    assert await db.fetchval("SELECT count(*) FROM customers") == 1


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (customer_body(last_name=""), {}),  # invalid: the application's 422 names the field
        ({**customer_body(), "unknown": 1}, {}),  # mass assignment attempt: the application refuses it
        (customer_body(contacts=[{"first_name": "O", "last_name": "B"}]), {}),  # one transaction, two tables
        (customer_body(), {"Idempotency-Key": "k-1"}),  # the application keeps the replay record
        (customer_body(), {"Content-Type": "text/plain"}),
    ],
    ids=["invalid", "unknown-field", "contacts", "idempotency-key", "not-json"],
)
async def test_anything_but_a_plain_create_goes_to_the_application_with_its_body(
    app: FastAPI,
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    db: asyncpg.Connection[Any],
    body: dict[str, Any],
    extra: dict[str, str],
) -> None:
    headers = {**json_headers(await remembered(client, tokens)), **extra}
    raw = json.dumps(body).encode()
    downstream, answer = await post(app, raw, headers)
    assert answer["status"] == 299
    assert downstream.bodies == [raw]
    assert await db.fetchval("SELECT count(*) FROM customers") == 0


async def test_a_body_in_pieces_is_read_whole_and_one_without_a_length_is_left_alone(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    headers = json_headers(await remembered(client, tokens))
    raw = json.dumps(customer_body()).encode()
    downstream, answer = await post(app, raw, headers, chunks=3)
    assert (answer["status"], downstream.bodies) == (201, [])
    # Chunked (no Content-Length): only the application's reader enforces the size limit.
    downstream, answer = await post(app, raw, headers, content_length=False)
    assert (answer["status"], downstream.bodies) == (299, [raw])
    assert await db.fetchval("SELECT count(*) FROM customers") == 1


async def test_a_token_never_verified_goes_to_the_application(
    app: FastAPI, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    raw = json.dumps(customer_body()).encode()
    downstream, answer = await post(app, raw, json_headers(tokens.headers("admin")))
    assert (answer["status"], downstream.bodies) == (299, [raw])
    assert await db.fetchval("SELECT count(*) FROM customers") == 0


async def test_a_read_pool_that_cannot_serve_leaves_the_create_to_the_application(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    headers = json_headers(await remembered(client, tokens))
    await app.state.read_pool.close()
    raw = json.dumps(customer_body()).encode()
    downstream, answer = await post(app, raw, headers)
    assert (answer["status"], downstream.bodies) == (299, [raw])
