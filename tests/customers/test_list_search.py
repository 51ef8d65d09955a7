"""The list with a `search` filter: pages exact whichever way they are found, totals capped."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from crm.common.pagination import CappedTotal, PageParams, Pagination, SortOrder
from crm.customers import search, service
from crm.customers.models import CustomerStatus
from tests.helpers import create_customer

SORTS = ["created_at", "last_name", "email", "company_name", "type"]


async def _list(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get("/api/customers", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _seed(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # Some contain "kov" (in different fields), some do not; statuses and types vary.
    for i in range(14):
        await create_customer(
            client,
            admin,
            first_name=f"N{i % 3}",
            last_name="Kovalenko" if i % 3 == 0 else f"Other{i}",
            email=f"kov{i}@example.com" if i % 4 == 1 else f"x{i}@example.com",
            company_name=None if i % 5 == 0 else f"Firm {i % 4}",
            status="active" if i % 2 else "lead",
            type=None if i % 6 == 0 else "business",
        )


async def _every_page(client: httpx.AsyncClient, admin: dict[str, str], **params: Any) -> list[str]:
    """Every id of the list walked by cursor, two at a time."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        body = await _list(client, admin, limit=2, **params, **({"cursor": cursor} if cursor else {}))
        ids += [c["id"] for c in body["customers"]]
        cursor = body["pagination"].get("nextCursor")
        if cursor is None:
            return ids


@pytest.mark.parametrize(
    "windows",
    [None, lambda need: (1,), lambda need: (10_000,)],
    ids=["configured", "rare-fallback", "window-covers-all"],
)
async def test_search_pages_agree_with_one_big_page(
    client: httpx.AsyncClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch, windows: Any
) -> None:
    # Whether the page comes from the window walk or from the trigram candidates, the rows and
    # their order are those of the whole filtered list, by offset and by cursor alike.
    await _seed(client, admin)
    if windows is not None:
        monkeypatch.setattr(search, "windows", windows)
    for sort_by in SORTS:
        for order in ("asc", "desc"):
            params = {"search": "kov", "status": "active", "sortBy": sort_by, "sortOrder": order}
            whole = [c["id"] for c in (await _list(client, admin, limit=100, **params))["customers"]]
            assert whole, params
            assert await _every_page(client, admin, **params) == whole, params
            second = await _list(client, admin, limit=2, page=2, **params)
            assert [c["id"] for c in second["customers"]] == whole[2:4], params
            assert second["pagination"]["total"] == len(whole)
            assert "totalCapped" not in second["pagination"]


async def test_search_filter_finds_exactly_the_matches(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _seed(client, admin)
    everyone = (await _list(client, admin, limit=100))["customers"]
    expected = {
        c["id"]
        for c in everyone
        if c["status"] == "active"
        and any("kov" in (c[f] or "").lower() for f in ("first_name", "last_name", "email", "company_name"))
    }
    body = await _list(client, admin, limit=100, search="KOV", status="active")
    assert {c["id"] for c in body["customers"]} == expected
    assert body["pagination"]["total"] == len(expected)


async def test_a_search_total_stops_at_the_cap(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for _ in range(5):
        await create_customer(client, admin, last_name="Kovalenko", status="active")
    await create_customer(client, admin, last_name="Kovalenko", status="lead")
    filters = service.CustomerFilters(status=CustomerStatus.active, search="kova")
    async with app.state.read_pool.acquire() as connection:

        async def total(cap: int, page: PageParams) -> int:
            _, counted, _ = await service.list_customers(
                connection, filters, page, "created_at", SortOrder.DESC, total_cap=cap
            )
            return counted

        first = PageParams(page=1, limit=2)
        capped = await total(3, first)
        assert capped == 3
        assert isinstance(capped, CappedTotal)
        # At the cap exactly, the count is whole: not capped.
        exact = await total(5, first)
        assert exact == 5
        assert not isinstance(exact, CappedTotal)
        # Counters-backed totals never cap.
        _, plain, _ = await service.list_customers(
            connection, service.CustomerFilters(status=CustomerStatus.active), first, "created_at", SortOrder.DESC
        )
        assert plain == 5
        assert not isinstance(plain, CappedTotal)
    assert (await _list(client, admin, search="kova", status="active"))["pagination"]["total"] == 5


def test_a_capped_total_is_said_and_the_next_page_still_follows_the_rows() -> None:
    page = Pagination.of(PageParams(page=3, limit=2), CappedTotal(4), next_cursor="abc")
    answer = page.model_dump(by_alias=True)
    assert answer["total"] == 4
    assert answer["totalCapped"] is True
    assert answer["totalPages"] == 2
    assert answer["hasNext"] is True  # the cap is not the end: the page saw a row beyond it
    last = Pagination.of(PageParams(page=3, limit=2), CappedTotal(4)).model_dump(by_alias=True)
    assert last["hasNext"] is False
    exact = Pagination.of(PageParams(page=1, limit=2), 4).model_dump(by_alias=True)
    assert "totalCapped" not in exact


def test_the_cap_is_documented_in_the_openapi_schema(app: Starlette) -> None:
    schema = app.state.openapi["components"]["schemas"]["Pagination"]["properties"]
    assert "10,000" in schema["totalCapped"]["description"]
