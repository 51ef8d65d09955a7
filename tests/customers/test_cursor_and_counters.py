"""Keyset pagination (`cursor`) and the trigger-maintained segment counters."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem, create_customer


async def _list(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get("/api/customers", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_cursor_continues_where_the_page_ended(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = [await create_customer(client, admin, last_name=f"Name{i:02d}") for i in range(7)]
    first = await _list(client, admin, limit=3, sortBy="last_name", sortOrder="asc")
    second = await _list(
        client, admin, limit=3, sortBy="last_name", sortOrder="asc", cursor=first["pagination"]["nextCursor"]
    )
    third = await _list(
        client, admin, limit=3, sortBy="last_name", sortOrder="asc", cursor=second["pagination"]["nextCursor"]
    )
    names = [c["last_name"] for page in (first, second, third) for c in page["customers"]]
    assert names == sorted(c["last_name"] for c in created)
    assert third["pagination"] == {
        "total": 7,
        "page": None,
        "limit": 3,
        "totalPages": 3,
        "hasNext": False,
        "hasPrev": True,
    }


async def test_rows_inserted_before_the_cursor_do_not_shift_the_next_page(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for i in range(4):
        await create_customer(client, admin, last_name=f"B{i}")
    first = await _list(client, admin, limit=2, sortBy="last_name", sortOrder="asc")
    await create_customer(client, admin, last_name="A-new")  # sorts before everything seen
    second = await _list(
        client, admin, limit=2, sortBy="last_name", sortOrder="asc", cursor=first["pagination"]["nextCursor"]
    )
    # Offset paging would repeat B1 here; the cursor continues after it.
    assert [c["last_name"] for c in second["customers"]] == ["B2", "B3"]


async def test_bad_cursors_are_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await create_customer(client, admin)
    await create_customer(client, admin)
    cursor = (await _list(client, admin, limit=1))["pagination"]["nextCursor"]
    forged = base64.urlsafe_b64encode(json.dumps(["created_at", "DESC", "not a date", "x"]).encode()).decode()
    for params in (
        {"cursor": "!!!"},
        {"cursor": "bm90IGpzb24"},  # "not json"
        {"cursor": forged.rstrip("=")},
        {"cursor": cursor, "sortBy": "last_name"},  # issued for another order
        {"cursor": cursor, "sortOrder": "asc"},
    ):
        response = await client.get("/api/customers", params=params, headers=admin)
        assert_problem(response, 422, "cursor")


async def test_segment_counters_stay_exact_under_concurrent_writes(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    statuses = ["active", "inactive", "lead", "prospect", "customer"]
    types = ["individual", "business", None]
    created = await asyncio.gather(
        *(create_customer(client, admin, status=statuses[i % 5], type=types[i % 3]) for i in range(30))
    )
    # Concurrent status/type changes and deletes on top of the inserts.
    await asyncio.gather(
        *(
            client.put(f"/api/customers/{c['id']}", json={"status": "lead", "type": "government"}, headers=admin)
            for c in created[:10]
        ),
        *(client.delete(f"/api/customers/{c['id']}", headers=admin) for c in created[10:16]),
    )
    segments = (await client.get("/api/customers/segments", headers=admin)).json()
    truth = await db.fetch(
        "SELECT status, coalesce(type, 'unspecified') AS type, count(*) AS n FROM customers GROUP BY 1, 2"
    )
    assert segments["total"] == sum(r["n"] for r in truth) == 24
    for row in truth:
        assert segments["byStatusAndType"][row["status"]][row["type"]] == row["n"]
    listed = await _list(client, admin, status="lead", type="government")
    assert listed["pagination"]["total"] == next(
        r["n"] for r in truth if (r["status"], r["type"]) == ("lead", "government")
    )
