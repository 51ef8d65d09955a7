"""Typo-tolerant search: a fallback that runs only when the exact/prefix/substring tiers find nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
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


async def test_two_letters_swapped_in_a_short_name(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    boiko = await create_customer(client, admin, first_name="Olena", last_name="Boiko")
    await create_customer(client, admin, first_name="Olena", last_name="Shevchuk")
    assert [c["id"] for c in await _search(client, admin, "Bokio")] == [boiko["id"]]


async def test_a_typo_beside_a_correct_word(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # The longest word is corrected; the rest of the query must still match.
    ivan = await create_customer(client, admin, first_name="Ivan", last_name="Petrenko")
    await create_customer(client, admin, first_name="Olena", last_name="Petrenko")
    assert [c["id"] for c in await _search(client, admin, "Ivan Petrneko")] == [ivan["id"]]


async def test_renamed_customers_are_found_by_their_new_name(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, first_name="Ivan", last_name="Petrenko")
    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"last_name": "Hrytsenko", "email": "ivan.work@example.com", "company_name": "Zoryana Group"},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert [c["id"] for c in await _search(client, admin, "Hrytsneko")] == [customer["id"]]
    assert [c["id"] for c in await _search(client, admin, "Zoryanna")] == [customer["id"]]
    # The old name's word stays in the dictionary, but nobody has it: nothing is found.
    assert await _search(client, admin, "Petrneko") == []


async def test_the_rebuild_makes_the_words_the_trigger_keeps(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    await create_customer(client, admin, first_name="Тетяна", last_name="Бойко", email="tetiana.boiko.7@example.com")
    await create_customer(client, admin, first_name="Mary Ann", last_name="O'Neil", company_name="ПП SmartГруп 2")
    kept = {r["word"] for r in await db.fetch("SELECT word FROM customer_words")}
    assert {"тетяна", "бойко", "tetiana", "boiko", "example", "com", "mary", "ann", "o", "neil"} <= kept
    assert {"пп", "smartгруп"} <= kept
    # Digits only: no typo tier for numbers.
    assert "7" not in kept
    assert "2" not in kept
    await db.execute("SELECT crm_rebuild_customer_words()")
    assert {r["word"] for r in await db.fetch("SELECT word FROM customer_words")} == kept
