"""Interaction search by trigram index: typo-tolerant fallback, and plans that use the index."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette

from tests.helpers import create_customer
from tests.interactions.support import create_interaction, driver_statements, ids
from tests.plans import plan_indexes


async def _search(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/interactions/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_a_misspelt_subject_still_finds_the_interaction(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    review = await create_interaction(client, admin, customer["id"], subject="Quarterly review")
    await create_interaction(client, admin, customer["id"], subject="Invoice sent", description="paid in full")
    described = await create_interaction(client, admin, customer["id"], subject="Call", description="Petrenko agreed")

    assert ids(await _search(client, admin, query="Quartrely")) == [review["id"]]
    assert ids(await _search(client, admin, query="Petrneko")) == [described["id"]]
    assert await _search(client, admin, query="Zzyzx") == []


async def test_closest_typo_first_then_newest(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    farther = await create_interaction(client, admin, customer["id"], subject="Ковальчук", date="2025-01-03")
    older = await create_interaction(client, admin, customer["id"], subject="Коваленко", date="2025-01-01")
    newer = await create_interaction(client, admin, customer["id"], subject="Коваленко", date="2025-01-02")
    found = ids(await _search(client, admin, query="Коваленка"))
    assert found[:2] == [newer["id"], older["id"]]
    assert farther["id"] not in found[:2]


async def test_typos_never_outrank_real_matches(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    literal = await create_interaction(client, admin, customer["id"], subject="Quartrely review")
    await create_interaction(client, admin, customer["id"], subject="Quarterly review")
    assert ids(await _search(client, admin, query="quartrely")) == [literal["id"]]


async def test_typo_fallback_keeps_the_customer_filter(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    acme = await create_customer(client, admin)
    globex = await create_customer(client, admin)
    at_acme = await create_interaction(client, admin, acme["id"], subject="Quarterly review")
    await create_interaction(client, admin, globex["id"], subject="Quarterly review")
    assert ids(await _search(client, admin, query="Quartrely", customerId=acme["id"])) == [at_acme["id"]]
    assert await _search(client, admin, query="Quartrely", customerId=str(uuid.uuid4())) == []


async def test_search_plans_use_the_indexes(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    await create_interaction(client, admin, customer["id"], subject="Quarterly review", date="2025-01-01")
    # Newer than the interaction searched for, so the newest-first walk of the substring tier
    # cannot meet it and the trigram index must; enough rows that a table scan would be the
    # natural plan for an unindexed condition.
    await db.execute(
        "INSERT INTO interactions (customer_id, user_id, type, subject, description, date)"
        " SELECT $1, $2, 'call', 'Follow-up call ' || i, 'nothing to see ' || i, '2025-02-01'"
        " FROM generate_series(1, 3000) i",
        uuid.UUID(customer["id"]),
        uuid.uuid4(),
    )
    await db.execute("ANALYZE interactions")

    # A prefix (the subject's btree), a fragment inside a word and a typo (the trigram index).
    for query, index in (
        ("quarterly", "ix_interactions_search_subject"),
        ("arterl", "ix_interactions_search_trgm"),
        ("Quartrely", "ix_interactions_search_trgm"),
    ):
        with driver_statements() as seen:
            assert len(await _search(client, admin, query=query)) == 1, query
        used: set[str] = set()
        for statement, parameters in seen:
            if statement.startswith(("SELECT", "WITH")):
                used |= await plan_indexes(db, statement, parameters)
        assert index in used, (query, used)
