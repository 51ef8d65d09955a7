"""The list's 1-character `search` (the search box's first keystroke): prefix matches, from indexes."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from crm.common.pagination import CappedTotal, PageParams, SortOrder
from crm.customers import queries, search, service
from tests.helpers import assert_problem, create_customer


async def _list(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get("/api/customers", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _seed(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    """Customers whose one field starts with "k" (one per field), and some that only contain it."""
    made = {
        "first_name": await create_customer(client, admin, first_name="Kateryna", last_name="Ivanova"),
        "last_name": await create_customer(client, admin, first_name="Oleh", last_name="kovalenko"),
        "email": await create_customer(client, admin, first_name="Ann", last_name="Lee", email="kyiv.ann@example.com"),
        "company_name": await create_customer(
            client, admin, first_name="Bo", last_name="Yu", company_name="Karpaty LLC", type="business"
        ),
        "tax_id": await create_customer(client, admin, first_name="Dan", last_name="Roe", tax_id="K-0042"),
    }
    # "k" inside a field, not at its start: a substring, which one letter does not search.
    await create_customer(client, admin, first_name="Mykola", last_name="Sokil", email="m.sokil@example.com")
    return {field: customer["id"] for field, customer in made.items()}


@pytest.mark.parametrize("windows", [None, lambda need: (1,)], ids=["window-walk", "index-ranges"])
async def test_one_character_matches_the_start_of_any_searched_field(
    client: httpx.AsyncClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch, windows: Any
) -> None:
    starts = await _seed(client, admin)
    if windows is not None:
        monkeypatch.setattr(search, "windows", windows)
    for typed in ("k", "K", " k "):
        body = await _list(client, admin, search=typed, limit=100)
        assert {c["id"] for c in body["customers"]} == set(starts.values()), typed
        assert body["total"] == body["pagination"]["total"] == 5
    # Filters and sorting apply as to any search; pages agree with the whole list.
    whole = [c["id"] for c in (await _list(client, admin, search="k", sortBy="last_name", limit=100))["customers"]]
    pages = [
        c["id"]
        for page in (1, 2, 3)
        for c in (await _list(client, admin, search="k", sortBy="last_name", limit=2, page=page))["customers"]
    ]
    assert pages == whole
    business = await _list(client, admin, search="k", type="business")
    assert [c["id"] for c in business["customers"]] == [starts["company_name"]]
    assert (await _list(client, admin, search="z"))["customers"] == []


async def test_non_ascii_initial_and_limits(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    olha = await create_customer(client, admin, first_name="Ольга", last_name="Шевченко")
    assert [c["id"] for c in (await _list(client, admin, search="ш"))["customers"]] == [olha["id"]]
    # A blank search is no filter; too long is still 422; /search keeps its 2-character minimum.
    assert (await _list(client, admin, search="  "))["total"] == 1
    assert_problem(await client.get("/api/customers", params={"search": "s" * 201}, headers=admin), 422, "search")
    assert_problem(await client.get("/api/customers/search", params={"query": "o"}, headers=admin), 422, "query")


async def test_an_initial_total_stops_at_the_cap(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for i in range(6):
        await create_customer(client, admin, first_name=f"Kira{i}")
    filters = service.CustomerFilters(search="k")
    async with app.state.read_pool.acquire() as connection:
        _, total, _ = await service.list_customers(
            connection, filters, PageParams(page=1, limit=2), "created_at", SortOrder.DESC, total_cap=4
        )
        assert total == 4
        assert isinstance(total, CappedTotal)
        _, exact, _ = await service.list_customers(
            connection, filters, PageParams(page=1, limit=2), "created_at", SortOrder.DESC, total_cap=6
        )
        assert exact == 6
        assert not isinstance(exact, CappedTotal)


async def test_the_initial_conditions_are_index_ranges(db: asyncpg.Connection[Any]) -> None:
    # With sequential scans priced out, the planner can answer the rare path and the count from
    # the lowered bytewise indexes alone: every condition is one of their ranges.
    shape = queries.ListShape("created_at", SortOrder.DESC, False, False, False, False, False, 11)
    match = queries.MatchShape.of("k")
    statement = queries._capped_count(shape, match, 10_000)
    values = {**statement.defaults, **queries.match_values("k")}
    await db.execute("SET enable_seqscan = off")
    rows = await db.fetch(f"EXPLAIN {statement.sql}", *(values[name] for name in statement.names))
    plan = "\n".join(r[0] for r in rows)
    assert "Seq Scan" not in plan, plan
    for index in ("ix_customers_search_first_last", "ix_customers_search_last_first", "uq_customers_email_lower"):
        assert index in plan, plan
