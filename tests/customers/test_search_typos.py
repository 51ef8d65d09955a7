"""Typo-tolerant search: a fallback that runs only when the exact/prefix/substring tiers find nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import create_customer


async def _search(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    response = await client.get("/api/customers/search", params={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_a_misspelt_name_still_finds_the_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    petrenko = await create_customer(client, admin, first_name="Ivan", last_name="Petrenko")
    await create_customer(client, admin, first_name="Olena", last_name="Shevchuk")
    assert [c["id"] for c in await _search(client, admin, "Petrneko")] == [petrenko["id"]]
    assert [c["id"] for c in await _search(client, admin, "Петрнеко")] == []


async def test_ukrainian_typos_and_closest_first(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    close = await create_customer(client, admin, first_name="Тарас", last_name="Коваленко")
    farther = await create_customer(client, admin, first_name="Тарас", last_name="Ковальчук")
    found = [c["id"] for c in await _search(client, admin, "Коваленка")]
    assert found[0] == close["id"]
    assert farther["id"] not in found[:1]


async def test_typos_never_outrank_real_matches(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # "Petrenk" is a prefix of one name: the tiers find it, so no fuzzy neighbour is added.
    exact = await create_customer(client, admin, first_name="Ivan", last_name="Petrenk")
    await create_customer(client, admin, first_name="Ivan", last_name="Petranko")
    assert [c["id"] for c in await _search(client, admin, "Petrenk")] == [exact["id"]]


async def test_nothing_similar_is_still_empty(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await create_customer(client, admin, first_name="Ivan", last_name="Petrenko")
    assert await _search(client, admin, "Zzyzx") == []
