"""Oversized request headers get a 4xx (or the connection is refused), never a 5xx, under both of
uvicorn's HTTP parsers. httptools - what `crm serve` runs - has no header limit of its own, so
the app refuses header blocks over 16 KiB with 431; h11 refuses them itself with a 400.
(httpx.ASGITransport has no header limit at all, hence a real server on a real socket.)"""

from __future__ import annotations

import json

import asyncpg
import pytest

from crm.middleware import MAX_HEADER_BYTES
from tests.helpers import customer_body
from tests.hostile.conftest import Live
from tests.hostile.support import RawResponse, assert_no_leak, raw_request

KIB = 1024

# (name, method, path, headers) - each carries a valid admin token unless it replaces it.
OVERSIZED = [
    ("64 KiB unknown header", "GET", "/health", {"X-Filler": "a" * 64 * KIB}),
    ("64 KiB unknown header on an API route", "GET", "/api/customers", {"X-Filler": "a" * 64 * KIB}),
    ("64 KiB bearer token", "GET", "/api/customers", {"Authorization": "Bearer " + "a" * 64 * KIB}),
    ("64 KiB cookie", "GET", "/api/customers", {"Cookie": "session=" + "a" * 64 * KIB}),
    ("64 KiB If-Match", "DELETE", "/api/customers/00000000-0000-4000-8000-000000000000", {"If-Match": "1" * 64 * KIB}),
    ("64 KiB Idempotency-Key", "POST", "/api/customers", {"Idempotency-Key": "k" * 64 * KIB}),
    ("64 KiB X-Request-ID", "GET", "/api/customers", {"X-Request-ID": "r" * 64 * KIB}),
    ("4,000 small headers", "GET", "/api/customers", {f"X-H{i}": "v" for i in range(4000)}),
    ("1 MiB header", "GET", "/api/customers", {"X-Filler": "a" * 1024 * KIB}),
    ("16 MiB header", "GET", "/health", {"X-Filler": "a" * 16 * 1024 * KIB}),
]


def assert_refused(response: RawResponse, case: str, parser: str) -> None:
    if response.status is None:
        return  # the server closed the connection without an answer: refused, not crashed
    assert 400 <= response.status < 500, (case, parser, response)
    assert_no_leak(response.body, case)
    if response.from_app:
        assert response.status == 431, (case, response)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == 431
        assert str(MAX_HEADER_BYTES) in problem["detail"]
    else:
        # Only h11 refuses on its own; with httptools every refusal must come from the app.
        assert parser == "h11", (case, response)


@pytest.mark.slow
async def test_oversized_headers_are_refused(live: Live, request: pytest.FixtureRequest) -> None:
    parser = request.node.callspec.params["live"]
    admin = live.tokens.headers("admin")
    body = json.dumps(customer_body()).encode()
    db = await asyncpg.connect(live.database_url)
    try:
        before = await db.fetchval("SELECT count(*) FROM customers")
        for case, method, path, extra in OVERSIZED:
            headers = {**admin, "Content-Type": "application/json", **extra}
            response = await raw_request(live.port, method, path, headers, body if method == "POST" else b"")
            assert_refused(response, case, parser)
        # Nothing was created by the refused POST, and the server still answers.
        assert await db.fetchval("SELECT count(*) FROM customers") == before
    finally:
        await db.close()
    assert (await raw_request(live.port, "GET", "/health")).status == 200


@pytest.mark.slow
async def test_large_but_reasonable_headers_still_work(live: Live) -> None:
    """The limit is not absurdly low: 12 KiB of headers (a big token, cookies) is served."""
    headers = {**live.tokens.headers("admin"), "Cookie": "c=" + "a" * 8 * KIB, "X-Trace": "t" * 3 * KIB}
    response = await raw_request(live.port, "GET", "/api/customers", headers)
    assert response.status == 200, response
    assert response.json()["pagination"]["page"] == 1
