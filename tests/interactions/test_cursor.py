"""Keyset pagination (`cursor`) of the interaction lists: the same rows, in the same order, as offset pages."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import assert_problem, create_customer
from tests.interactions.support import create_interaction, ids

SORTS = ("date", "created_at", "type", "subject")
ORDERS = ("ASC", "DESC")
DAY = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)


async def _seed(db: asyncpg.Connection[Any], customer_id: str, count: int, user_id: uuid.UUID) -> None:
    """Rows tying on every sortable column (3 dates, 2 created_at, 2 types, 3 subjects), as stored directly."""
    await db.executemany(
        "INSERT INTO interactions (customer_id, user_id, type, subject, date, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $6)",
        [
            (
                uuid.UUID(customer_id),
                user_id,
                ("call", "note")[i % 2],
                f"subject {i % 3}",
                DAY.replace(hour=9 + i % 3),
                DAY.replace(day=2 + i % 2),
            )
            for i in range(count)
        ],
    )


async def _get(client: httpx.AsyncClient, headers: dict[str, str], url: str, **params: Any) -> dict[str, Any]:
    response = await client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _by_offset(client: httpx.AsyncClient, headers: dict[str, str], url: str, **params: Any) -> list[str]:
    seen: list[str] = []
    page = 1
    while True:
        body = await _get(client, headers, url, page=page, **params)
        seen += ids(body["interactions"])
        if not body["pagination"]["hasNext"]:
            return seen
        page += 1


async def _by_cursor(client: httpx.AsyncClient, headers: dict[str, str], url: str, **params: Any) -> list[str]:
    body = await _get(client, headers, url, **params)
    seen = ids(body["interactions"])
    total = body["pagination"]["total"]
    while "nextCursor" in body["pagination"]:
        assert len(seen) <= total, "the cursor walk does not end"
        body = await _get(client, headers, url, cursor=body["pagination"]["nextCursor"], **params)
        seen += ids(body["interactions"])
        pagination = body["pagination"]
        assert pagination["page"] is None
        assert pagination["total"] == total
        assert pagination["hasPrev"] is True
        assert pagination["hasNext"] == ("nextCursor" in pagination)
    assert len(seen) == total
    return seen


def _expected(rows: list[asyncpg.Record], sort_by: str, order: str) -> list[str]:
    # Subjects and types are lowercase ASCII, so Python's order is the database's under any collation.
    ordered = sorted(rows, key=lambda r: (r[sort_by], r["id"]), reverse=order == "DESC")
    return [str(r["id"]) for r in ordered]


@pytest.mark.parametrize("where", ["customer", "date-range"])
async def test_cursor_walks_match_offset_pages_for_every_sort(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], where: str
) -> None:
    customer = await create_customer(client, admin)
    other = await create_customer(client, admin)
    await _seed(db, customer["id"], 14, uuid.uuid4())
    await _seed(db, other["id"], 5, uuid.uuid4())
    if where == "customer":
        url = f"/api/interactions/customer/{customer['id']}"
        rows = await db.fetch("SELECT * FROM interactions WHERE customer_id = $1", uuid.UUID(customer["id"]))
    else:
        url = "/api/interactions/date-range"
        rows = await db.fetch("SELECT * FROM interactions")

    for sort_by in SORTS:
        for order in ORDERS:
            params = {"limit": 4, "sortBy": sort_by, "sortOrder": order}
            expected = _expected(rows, sort_by, order)
            assert await _by_offset(client, admin, url, **params) == expected, (sort_by, order)
            assert await _by_cursor(client, admin, url, **params) == expected, (sort_by, order)


async def test_cursor_keeps_the_filters(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    user = uuid.uuid4()
    await _seed(db, customer["id"], 12, user)
    await _seed(db, customer["id"], 4, uuid.uuid4())
    rows = await db.fetch("SELECT * FROM interactions WHERE type = 'call' AND user_id = $1", user)
    params = {"limit": 2, "type": "call", "userId": str(user), "sortBy": "subject", "sortOrder": "asc"}
    found = await _by_cursor(client, admin, "/api/interactions/date-range", **params)
    assert found == _expected(rows, "subject", "ASC")
    assert len(found) == 6


async def test_default_order_pages_and_the_last_page(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    made = [
        await create_interaction(client, admin, customer["id"], date=f"2025-02-0{d}T09:00:00Z") for d in range(1, 6)
    ]
    url = f"/api/interactions/customer/{customer['id']}"

    first = await _get(client, admin, url, limit=2)
    second = await _get(client, admin, url, limit=2, cursor=first["pagination"]["nextCursor"])
    last = await _get(client, admin, url, limit=2, cursor=second["pagination"]["nextCursor"])

    assert ids(first["interactions"]) == [made[4]["id"], made[3]["id"]]
    assert ids(second["interactions"]) == [made[2]["id"], made[1]["id"]]
    assert ids(last["interactions"]) == [made[0]["id"]]
    assert last["pagination"] == {
        "total": 5,
        "page": None,
        "limit": 2,
        "totalPages": 3,
        "hasNext": False,
        "hasPrev": True,
    }
    # Exactly a full last page: no cursor to an empty page.
    exact = await _get(client, admin, url, limit=5)
    assert "nextCursor" not in exact["pagination"]
    assert exact["pagination"]["hasNext"] is False


async def test_cursor_wins_over_page(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    for d in range(1, 6):
        await create_interaction(client, admin, customer["id"], date=f"2025-02-0{d}T09:00:00Z")
    url = "/api/interactions/date-range"
    cursor = (await _get(client, admin, url, limit=2))["pagination"]["nextCursor"]
    alone = await _get(client, admin, url, limit=2, cursor=cursor)
    with_page = await _get(client, admin, url, limit=2, cursor=cursor, page=3)
    assert with_page == alone
    assert with_page["pagination"]["page"] is None


async def test_rows_added_before_the_cursor_do_not_shift_the_next_page(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    made = [
        await create_interaction(client, admin, customer["id"], date=f"2025-02-0{d}T09:00:00Z") for d in range(1, 6)
    ]
    url = f"/api/interactions/customer/{customer['id']}"
    first = await _get(client, admin, url, limit=2)
    await create_interaction(client, admin, customer["id"], date="2025-03-01T09:00:00Z")  # newest of all
    second = await _get(client, admin, url, limit=2, cursor=first["pagination"]["nextCursor"])
    # An offset page would repeat made[3] here; the cursor continues after it.
    assert ids(second["interactions"]) == [made[2]["id"], made[1]["id"]]
    assert second["pagination"]["total"] == 6


def _forge(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("where", ["customer", "date-range"])
async def test_bad_cursors_are_422(client: httpx.AsyncClient, admin: dict[str, str], where: str) -> None:
    customer = await create_customer(client, admin)
    for d in range(1, 4):
        await create_interaction(client, admin, customer["id"], date=f"2025-02-0{d}T09:00:00Z")
    url = f"/api/interactions/customer/{customer['id']}" if where == "customer" else "/api/interactions/date-range"
    issued = (await _get(client, admin, url, limit=1))["pagination"]["nextCursor"]
    by_subject = (await _get(client, admin, url, limit=1, sortBy="subject"))["pagination"]["nextCursor"]
    some_id = str(uuid.uuid4())
    cases: list[dict[str, Any]] = [
        {"cursor": "!!!"},
        {"cursor": "bm90IGpzb24"},  # "not json"
        {"cursor": _forge("date", "DESC", "not a date", some_id)},
        {"cursor": _forge("date", "DESC", "2025-02-01T09:00:00", some_id)},  # no offset: not one we issued
        {"cursor": _forge("date", "DESC", "0001-01-01T00:00:00+01:00", some_id)},  # before year 1 in UTC
        {"cursor": _forge("date", "DESC", None, some_id)},  # no date is NULL
        {"cursor": _forge("date", "DESC", "2025-02-01T09:00:00+00:00", "not a uuid")},
        {"cursor": _forge("date", "DESC", 5, some_id)},
        {"cursor": _forge("subject", "DESC", "nul \x00 inside", some_id), "sortBy": "subject"},
        {"cursor": _forge("subject", "DESC", "\ud800", some_id), "sortBy": "subject"},
        {"cursor": issued, "sortBy": "subject"},  # issued for another sortBy
        {"cursor": issued, "sortOrder": "asc"},  # issued for another order
        {"cursor": by_subject},
    ]
    for params in cases:
        response = await client.get(url, params={"limit": 1, **params}, headers=admin)
        assert_problem(response, 422, "cursor")
