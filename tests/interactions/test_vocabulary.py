"""The typo pass asks the interactions' words first: a query no known word resembles is answered
without the trigram search over every text, and the words follow every write."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import create_customer
from tests.interactions.support import create_interaction, ids


async def _words(db: asyncpg.Connection[Any]) -> set[str]:
    return {r["word"] for r in await db.fetch("SELECT word FROM interaction_words")}


async def _search(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    response = await client.get("/api/interactions/search", params={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_writes_add_their_words_and_the_rebuild_agrees(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    created = await create_interaction(
        client, admin, customer["id"], subject="Quarterly review", description="Петренко agreed: 12 units, v2"
    )
    assert {"quarterly", "review", "петренко", "agreed", "units", "v2"} <= await _words(db)
    assert "12" not in await _words(db)  # digits only: no typo pass for numbers

    edited = await client.put(
        f"/api/interactions/{created['id']}", json={"subject": "Renewal negotiation"}, headers=admin
    )
    assert edited.status_code == 200, edited.text
    assert {"renewal", "negotiation"} <= await _words(db)
    # Words are only ever added (a rebuild drops the ones nobody has any more).
    assert "quarterly" in await _words(db)

    await db.execute("SELECT crm_rebuild_interaction_words()")
    rebuilt = await _words(db)
    assert "quarterly" not in rebuilt
    expected = {"renewal", "negotiation", "петренко", "agreed", "units", "v2"}
    assert rebuilt == expected


async def test_the_typo_pass_looks_only_where_a_known_word_resembles_the_query(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    described = await create_interaction(client, admin, customer["id"], subject="Call", description="Petrenko agreed")
    assert ids(await _search(client, admin, "Petrneko")) == [described["id"]]
    # Several words: the dictionary is asked word by word, and the texts with the whole query.
    assert ids(await _search(client, admin, "Petrneko agrede")) == [described["id"]]

    # Without the word in the dictionary the same typo finds nothing: the dictionary is asked,
    # and a query it holds nothing like never reaches the texts.
    await db.execute("DELETE FROM interaction_words WHERE word = 'petrenko'")
    assert await _search(client, admin, "Petrneko") == []
    # The literal tiers do not depend on it.
    assert ids(await _search(client, admin, "petrenko")) == [described["id"]]


async def test_a_search_within_a_customer_keeps_its_typos_whatever_the_dictionary_holds(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    described = await create_interaction(client, admin, customer["id"], subject="Call", description="Petrenko agreed")
    await db.execute("DELETE FROM interaction_words")
    # One customer's rows are few: its typo pass reads them all, no dictionary needed.
    response = await client.get(
        "/api/interactions/search", params={"query": "Petrneko", "customerId": customer["id"]}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert ids(response.json()) == [described["id"]]
    assert uuid.UUID(described["id"])
