"""GET /api/interactions/search: relevance tiers, literal wildcards, filters and limits."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import assert_problem, create_customer
from tests.interactions.support import create_interaction, ids


async def _search(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/interactions/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    assert isinstance(found, list)
    return found


async def test_exact_then_prefix_then_substring(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, company_name="Acme")
    # Created in the opposite order of relevance, so insertion order cannot pass the test.
    older_substring = await create_interaction(
        client, admin, customer["id"], subject="Call", description="We discussed the BUDGET", date="2025-01-01"
    )
    newer_substring = await create_interaction(client, admin, customer["id"], subject="Q3 budget", date="2025-01-03")
    prefix = await create_interaction(client, admin, customer["id"], subject="Budget review", date="2025-01-02")
    exact = await create_interaction(client, admin, customer["id"], subject="budget", date="2025-01-01")
    await create_interaction(client, admin, customer["id"], subject="Lunch", description="nothing to see")

    found = await _search(client, admin, query="  BUDGET ")

    # Within a tier, newest first.
    assert ids(found) == [exact["id"], prefix["id"], newer_substring["id"], older_substring["id"]]
    assert {k: v for k, v in found[0].items() if k != "customer"} == exact
    assert found[0]["customer"]["id"] == customer["id"]
    assert found[0]["customer"]["company_name"] == "Acme"

    # An exact or prefix match in the description ranks like one in the subject.
    described = await create_interaction(client, admin, customer["id"], subject="Misc", description="Budget")
    assert ids(await _search(client, admin, query="budget"))[:2] == [described["id"], exact["id"]]
    assert ids(await _search(client, admin, query="budget", limit="3")) == [described["id"], exact["id"], prefix["id"]]


async def test_wildcards_are_literal(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    percent = await create_interaction(client, admin, customer["id"], subject="100% done")
    await create_interaction(client, admin, customer["id"], subject="1000 done")
    underscore = await create_interaction(client, admin, customer["id"], subject="file a_b sent")
    await create_interaction(client, admin, customer["id"], subject="file axb sent")
    backslash = await create_interaction(client, admin, customer["id"], subject="path C:\\temp")
    await create_interaction(client, admin, customer["id"], subject="path C:temp")

    assert ids(await _search(client, admin, query="0%")) == [percent["id"]]
    assert ids(await _search(client, admin, query="%%")) == []
    assert ids(await _search(client, admin, query="a_b")) == [underscore["id"]]
    assert ids(await _search(client, admin, query="__")) == []
    assert ids(await _search(client, admin, query=":\\t")) == [backslash["id"]]


async def test_filter_by_customer(client: httpx.AsyncClient, employee: dict[str, str]) -> None:
    acme = await create_customer(client, employee)
    globex = await create_customer(client, employee)
    at_acme = await create_interaction(client, employee, acme["id"], subject="Renewal call")
    at_globex = await create_interaction(client, employee, globex["id"], subject="Renewal call")

    assert ids(await _search(client, employee, query="renewal", customerId=acme["id"])) == [at_acme["id"]]
    assert ids(await _search(client, employee, query="renewal", customerId=globex["id"])) == [at_globex["id"]]
    assert await _search(client, employee, query="renewal", customerId=str(uuid.uuid4())) == []
    assert len(await _search(client, employee, query="renewal")) == 2


async def test_search_rejects_bad_parameters(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "query"),
        ({"query": "a"}, "query"),
        ({"query": "   a   "}, "query"),
        ({"query": "x" * 201}, "query"),
        ({"query": "ab\x00"}, "query"),
        ({"query": "ab", "limit": "0"}, "limit"),
        ({"query": "ab", "limit": "101"}, "limit"),
        ({"query": "ab", "customerId": "acme"}, "customerId"),
    ]
    for params, field in cases:
        response = await client.get("/api/interactions/search", params=params, headers=admin)
        assert response.status_code == 422, (params, response.text)
        assert_problem(response, 422, field)
    assert await _search(client, admin, query=" ab ", limit="100") == []
