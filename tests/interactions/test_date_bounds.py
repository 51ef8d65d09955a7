"""`startDate` / `endDate` at the edges of what Python and PostgreSQL hold, through HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import assert_problem, create_customer
from tests.interactions.support import create_interaction, ids

ENDPOINTS = ["/api/interactions/date-range", "/api/interactions/statistics"]
FIRST = "0001-01-01T00:00:00+00:00"
LAST = "9999-12-31T23:59:59.999999+00:00"


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        # Valid ISO 8601, but the offset pushes the moment before year 1 or after 9999 in UTC.
        ("startDate", "0001-01-01T00:00:00+01:00"),
        ("endDate", "9999-12-31T23:59:59-01:00"),
        ("startDate", "9999-12-31T23:30:00-01:00"),
        ("endDate", "0001-01-01T00:30:00+01:00"),
        # Not dates Python can hold at all.
        ("startDate", "0000-12-31"),
        ("endDate", "10000-01-01"),
        ("endDate", "9999-12-32"),
        ("startDate", "2025-01-01T24:00:01"),
    ],
)
async def test_a_date_that_cannot_be_held_is_422_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], url: str, field: str, value: str
) -> None:
    other = {"startDate": "2025-01-01"} if field == "endDate" else {"endDate": "2025-12-31"}
    response = await client.get(url, params={field: value, **other}, headers=admin)
    problem = assert_problem(response, 422, field)
    assert field in problem["detail"]


@pytest.mark.parametrize("url", ENDPOINTS)
async def test_an_offset_date_inside_the_range_is_fine(
    client: httpx.AsyncClient, admin: dict[str, str], url: str
) -> None:
    params = {"startDate": "0001-01-01T01:00:00+01:00", "endDate": "9999-12-31T22:59:59-01:00"}
    assert (await client.get(url, params=params, headers=admin)).status_code == 200


@pytest.fixture
async def edges(client: httpx.AsyncClient, admin: dict[str, str]) -> list[str]:
    """Interactions at the first and the last moment that can be stored."""
    customer = await create_customer(client, admin)
    first = await create_interaction(client, admin, customer["id"], date=FIRST)
    last = await create_interaction(client, admin, customer["id"], date=LAST)
    return [first["id"], last["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"startDate": "0001-01-01", "endDate": "9999-12-31"},  # date-only: the whole last day
        {"startDate": FIRST, "endDate": LAST},  # inclusive end instant
        {"startDate": "0001-01-01T00:00:00Z", "endDate": "9999-12-31T23:59:59.999999Z"},
        {"endDate": "9999-12-31"},
        {"startDate": "9999-12-31"},
    ],
)
async def test_the_first_and_last_storable_days_are_accepted_and_included(
    client: httpx.AsyncClient, admin: dict[str, str], edges: list[str], params: dict[str, str]
) -> None:
    expected = edges[1:] if params.get("startDate") == "9999-12-31" else edges
    listed = await client.get("/api/interactions/date-range", params=params, headers=admin)
    assert listed.status_code == 200, listed.text
    assert sorted(ids(listed.json()["interactions"])) == sorted(expected)
    stats = await client.get("/api/interactions/statistics", params=params, headers=admin)
    assert stats.status_code == 200, stats.text
    body: dict[str, Any] = stats.json()
    assert body["total"] == len(expected), body


async def test_the_last_day_alone_excludes_the_day_before(
    client: httpx.AsyncClient, admin: dict[str, str], edges: list[str]
) -> None:
    params = {"startDate": "9999-12-30", "endDate": "9999-12-30"}
    listed = await client.get("/api/interactions/date-range", params=params, headers=admin)
    assert listed.status_code == 200, listed.text
    assert listed.json()["interactions"] == []
    del edges
