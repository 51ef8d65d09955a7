"""The customer search's plain read below the framework (crm.customers.fast_search).

It must answer what the application answers, byte for byte, and leave anything else to it.
As in test_fast_read, the middleware runs with a downstream app that records whether it was
called, so each test shows which of the two answered.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from crm.customers import fast_search
from tests.customers.fastpath_support import drive
from tests.helpers import TokenFactory, create_customer


async def drive_search(app: FastAPI, query: str, headers: dict[str, str]) -> tuple[int, int, bytes, dict[bytes, bytes]]:
    """GET /api/customers/search?<query> through FastPath with the search's read alone:
    (downstream calls, status, body, headers)."""
    downstream, answer = await drive(app, f"/api/customers/search?{query}", headers, fast_search.READS)
    return downstream.calls, answer["status"], answer["body"], answer["headers"]


async def _seed(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    await create_customer(
        client,
        headers,
        first_name="Ivan",
        last_name="Petrenko",
        company_name="Їжак і Ко",
        contacts=[{"first_name": "Olena", "last_name": "Bondar", "email": "o@example.com"}],
    )
    await create_customer(client, headers, first_name="Ivanna", last_name="Kovalenko", phone="+380 (67) 123-45-67")
    await create_customer(client, headers, first_name="Maria", last_name="Ivanenko", email=None, phone=None)


@pytest.mark.parametrize(
    "params",
    [
        {"query": "ivan"},
        {"query": "ivan", "limit": "2"},
        {"limit": "100", "query": "enko"},
        {"query": "  Ivan   Petrenko "},
        {"query": "їжак"},
        {"query": "067 123"},
        {"query": "Petrneko"},  # the typo-tolerant tier
        {"query": "qqqq"},  # nothing: []
    ],
)
async def test_fast_answer_is_the_applications_answer(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str], params: dict[str, str]
) -> None:
    await _seed(client, admin)
    reader = tokens.headers("employee", user_id=uuid.uuid4())
    query = urlencode(params)
    slow = await client.get(f"/api/customers/search?{query}", headers=reader)  # remembers the token
    assert slow.status_code == 200, slow.text
    calls, status, body, headers = await drive_search(app, query, reader)
    assert (calls, status) == (0, 200)
    assert body == slow.content
    assert headers[b"content-type"].decode() == slow.headers["content-type"]
    assert int(headers[b"content-length"]) == len(slow.content)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "limit=5",  # no query
        "query=a",  # too short: the application's 422
        "query=%20a%20",
        "query=" + "a" * 201,
        "query=ab%00cd",
        "query=%ff%fe",  # not UTF-8
        "query=ab&limit=0",
        "query=ab&limit=101",
        "query=ab&limit=010",
        "query=ab&limit=ten",
        "query=ab&limit=",
        "query=ab&query=cd",
        "query=ab&sort=name",
        "quer%79=ab",
        "query",
        "query=\xe9t\xe9",  # raw bytes beyond ASCII
    ],
)
async def test_anything_but_a_plain_search_goes_to_the_application(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], query: str
) -> None:
    await create_customer(client, admin)  # makes the admin's token known
    calls, status, _, _ = await drive_search(app, query, admin)
    assert (calls, status) == (1, 299)


async def test_a_token_never_verified_goes_to_the_application(app: FastAPI, tokens: TokenFactory) -> None:
    calls, _, _, _ = await drive_search(app, "query=ivan", tokens.headers("admin"))
    assert calls == 1


async def test_plain_search_limits_are_answered_fast(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # The edges of what the parse accepts, so the refusals above are not the parse refusing everything.
    await _seed(client, admin)
    for query in ("query=ivan&limit=1", "query=ivan&limit=100", "query=iv", "query=%D0%86%D0%B2%D0%B0%D0%BD+x"):
        calls, status, _, _ = await drive_search(app, query, admin)
        assert (calls, status) == (0, 200), query
