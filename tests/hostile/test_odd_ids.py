"""Path traversal and odd ids in every `{id}` route: 404 or 422, never a 5xx, nothing changed.

Sent as raw bytes to a real server: HTTP clients resolve `..` before sending, attackers do not.
The routes come from the OpenAPI document, so a new `{id}` route is covered without editing this.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import customer_body
from tests.hostile.conftest import Live
from tests.hostile.support import RawResponse, assert_no_leak, raw_request, snapshot

REAL = "{real}"  # replaced by the id of an existing row of the route's own kind

ODD_IDS = [
    "..",
    "../",
    "../..",
    "../../../../etc/passwd",
    "..%2f",
    "%2e%2e%2f",
    "%2e%2e",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "%252e%252e%252f",  # double-encoded
    "..%00",
    "%00",
    "..%5c..%5c",
    "..\\..\\",
    "....//",
    ".%2e/",
    "%c0%ae%c0%ae%c0%af",  # overlong UTF-8 for ../
    "%ff%fe",
    "%zz",
    "%",
    "%25",
    "%20",
    "%09",
    "a" * 10_000,
    "%D0%B8%D0%B4",  # "ид"
    "%F0%9F%92%A5",  # an emoji
    "\u0438\u0434",  # raw UTF-8 bytes in the request line
    "*",
    "null",
    "0",
    "-1",
    "{id}",
    REAL + "/..",
    REAL + "%2f..",
    REAL + "/../" + REAL,
    REAL + "%00",
    REAL + "'--",
    REAL + "%20OR%201=1",
]


def id_routes(app_spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path template, the kind of row its id names) of every route with a path id."""
    routes: list[tuple[str, str, str]] = []
    for path, operations in app_spec["paths"].items():
        match = re.search(r"\{(\w+)\}", path)
        if match is None:
            continue
        kind = {
            "customer_id": "customers",
            "contact_id": "contacts",
            "interaction_id": "interactions",
            "webhook_id": "webhooks",
        }[match.group(1)]
        routes.extend((method.upper(), path, kind) for method in operations)
    return routes


async def seed(live: Live) -> dict[str, str]:
    admin = live.tokens.headers("admin")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}", headers=admin) as http:
        body = customer_body(contacts=[{"first_name": "Odd", "last_name": "Ids"}])
        customer = (await http.post("/api/customers", json=body)).json()
        interaction = await http.post(
            "/api/interactions", json={"customer_id": customer["id"], "type": "call", "subject": "Odd ids"}
        )
        # Disabled: the odd requests' changes (none) would otherwise be sent to this address.
        webhook = await http.post("/api/webhooks", json={"url": "https://93.184.216.34/", "events": ["*"]})
        await http.patch(f"/api/webhooks/{webhook.json()['id']}", json={"enabled": False})
    return {
        "customers": customer["id"],
        "contacts": customer["contacts"][0]["id"],
        "interactions": interaction.json()["id"],
        "webhooks": webhook.json()["id"],
    }


def assert_refused(response: RawResponse, target: str, what: str) -> None:
    """A 4xx without leaks: 404 or 422 from the app, or the parser's own 400 for a request line it rejects."""
    assert response.status is not None, what
    assert response.status < 500, (what, response)
    assert_no_leak(response.body, what)
    assert b"root:" not in response.body
    if response.from_app:
        assert response.status in {404, 422}, (what, response)
        assert response.headers["content-type"].startswith("application/problem+json"), (what, response)
    else:
        # A request line the parser itself refuses (raw non-ASCII bytes, a malformed escape).
        assert response.status == 400, (what, response)


@pytest.mark.slow
async def test_odd_ids_in_every_id_route(live: Live) -> None:
    real = await seed(live)
    headers = {**live.tokens.headers("admin"), "Content-Type": "application/json"}
    routes = id_routes((await raw_request(live.port, "GET", "/openapi.json")).json())
    # 14 today; fewer would mean the discovery broke and this test checked little.
    assert len(routes) >= 14
    seen: set[int | None] = set()
    db = await asyncpg.connect(live.database_url)
    try:
        before = await snapshot(db)
        for method, template, kind in routes:
            for odd in ODD_IDS:
                target = re.sub(r"\{\w+\}", lambda _: odd.replace(REAL, real[kind]), template)  # noqa: B023
                body = b"{}" if method in {"PUT", "PATCH"} else b""
                response = await raw_request(live.port, method, target.encode(), headers, body)
                assert_refused(response, target, f"{method} {target[:120]}")
                seen.add(response.status)
        # Traversal reached nothing: every row is as it was (DELETE included).
        assert await snapshot(db) == before
    finally:
        await db.close()
    for kind, row_id in real.items():
        path = {
            "customers": "/api/customers/",
            "contacts": "/api/contacts/",
            "interactions": "/api/interactions/",
            "webhooks": "/api/webhooks/",
        }
        response = await raw_request(live.port, "GET", path[kind] + row_id, headers)
        assert response.status == 200, response
        assert json.loads(response.body)["id"] == row_id
    assert {404, 422} <= seen, seen


@pytest.mark.slow
async def test_a_valid_id_in_another_spelling_is_not_a_way_around(live: Live) -> None:
    """Upper case, braces or no dashes name the same row (uuid parsing), or none: never another one."""
    real = await seed(live)
    headers = live.tokens.headers("admin")
    customer = real["customers"]
    spellings = [customer.upper(), customer.replace("-", ""), "%7B" + customer + "%7D", "urn:uuid:" + customer]
    for spelling in spellings:
        response = await raw_request(live.port, "GET", "/api/customers/" + spelling, headers)
        assert response.status in {200, 422}, response
        if response.status == 200:
            assert response.json()["id"] == customer
    other = str(uuid.UUID(int=uuid.UUID(customer).int ^ 1))
    response = await raw_request(live.port, "GET", "/api/customers/" + other, headers)
    assert response.status == 404, response


async def test_trailing_slash_is_not_redirected_to_the_callers_host(client: httpx.AsyncClient) -> None:
    for path in ("/api/customers/", "/api/customers/search/", "/health/"):
        response = await client.get(path, headers={"Host": "evil.example"})
        assert "location" not in response.headers, (path, response.headers)
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")
