"""Contact search by trigram index: typo-tolerant fallback, and plans that use the index."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette

from tests.contacts.support import create_contact
from tests.helpers import create_customer
from tests.interactions.support import driver_statements
from tests.plans import plan_indexes


async def _search(client: httpx.AsyncClient, headers: dict[str, str], query: str, **params: str) -> list[str]:
    response = await client.get("/api/contacts/search", params={"query": query, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()]


async def test_a_misspelt_name_still_finds_the_contact(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    petrenko = await create_contact(client, admin, customer["id"], first_name="Ivan", last_name="Petrenko")
    await create_contact(client, admin, customer["id"], first_name="Olena", last_name="Shevchuk")
    accountant = await create_contact(client, admin, customer["id"], first_name="Anna", position="Accountant")

    assert await _search(client, admin, "Petrneko") == [petrenko["id"]]
    assert await _search(client, admin, "Acountant") == [accountant["id"]]
    assert await _search(client, admin, "Zzyzx") == []


async def test_ukrainian_typos_closest_first(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    farther = await create_contact(client, admin, customer["id"], first_name="Тарас", last_name="Ковальчук")
    close = await create_contact(client, admin, customer["id"], first_name="Тарас", last_name="Коваленко")
    found = await _search(client, admin, "Коваленка")
    assert found[0] == close["id"]
    assert farther["id"] not in found[:1]


async def test_typos_never_outrank_real_matches(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    # "Petrenk" is a prefix of one name: the tiers find it, so no fuzzy neighbour is added.
    exact = await create_contact(client, admin, customer["id"], first_name="Ivan", last_name="Petrenk")
    await create_contact(client, admin, customer["id"], first_name="Ivan", last_name="Petranko")
    assert await _search(client, admin, "Petrenk") == [exact["id"]]


async def test_typo_fallback_keeps_the_customer_filter(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    one = await create_customer(client, admin)
    two = await create_customer(client, admin)
    mine = await create_contact(client, admin, one["id"], first_name="Ivan", last_name="Petrenko")
    await create_contact(client, admin, two["id"], first_name="Ivan", last_name="Petrenko")
    assert await _search(client, admin, "Petrneko", customerId=one["id"]) == [mine["id"]]
    assert await _search(client, admin, "Petrneko", customerId=str(uuid.uuid4())) == []


async def test_search_plans_use_the_indexes(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    await create_contact(client, admin, customer["id"], first_name="Ivan", last_name="Petrenko", phone="+380 67 999")
    # Newer than the contact searched for, so the newest-first walk of the substring tier
    # cannot meet it and the trigram index must; enough rows that a table scan would be the
    # natural plan for an unindexed condition.
    await db.execute(
        "INSERT INTO contacts (customer_id, first_name, last_name, phone, created_at, updated_at)"
        " SELECT $1, 'Name' || i, 'Surname' || i, '+44 20 ' || i, now() + interval '1 day', now()"
        " FROM generate_series(1, 3000) i",
        uuid.UUID(customer["id"]),
    )
    await db.execute("ANALYZE contacts")

    # A name's prefix, phone digits (the btree of each field), a fragment inside the surname
    # and a typo (the trigram index).
    for query, index in (
        ("petrenko", "ix_contacts_search_last_first"),
        ("+380 (67) 99", "ix_contacts_search_phone"),
        ("trenk", "ix_contacts_search_trgm"),
        ("Petrneko", "ix_contacts_search_trgm"),
    ):
        with driver_statements() as seen:
            assert len(await _search(client, admin, query)) == 1, query
        used: set[str] = set()
        for statement, parameters in seen:
            if statement.startswith(("SELECT", "WITH")):
                used |= await plan_indexes(db, statement, parameters)
        assert index in used, (query, used)
