"""Erasure's statements: what of the person exists, and removing every trace of it.

All on the request's session, in its one transaction; the 410 look-up (`erased_one`) on the
read pool's driver connection.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# FOR UPDATE, not the contact writers' FOR NO KEY UPDATE: the row goes, and every writer that
# references it (a new contact's or interaction's foreign key) must wait and then miss it.
_LOCK_LIVE = text("SELECT to_jsonb(c) FROM customers c WHERE id = :id FOR UPDATE")


async def lock_live(session: AsyncSession, customer_id: UUID) -> dict[str, Any] | None:
    """The live customer's row as JSON, locked; None if it is not live."""
    found: dict[str, Any] | None = await session.scalar(_LOCK_LIVE, {"id": customer_id})
    return found


_DELETE_LIVE = (
    text("DELETE FROM interactions WHERE customer_id = :id RETURNING 'interaction', id"),
    text("DELETE FROM contacts WHERE customer_id = :id RETURNING 'contact', id"),
    text("DELETE FROM customers WHERE id = :id RETURNING 'customer', id"),
)
_DELETE_TRASHED = text("DELETE FROM trash WHERE customer_id = :id RETURNING entity, id")


async def remove_records(session: AsyncSession, customer_id: UUID) -> list[tuple[str, UUID]]:
    """Delete the customer, its contacts and interactions, live and trashed: (entity, id) of each.

    The live tables' DELETE triggers keep the counters, segments and roll-ups exact.
    """
    removed: list[tuple[str, UUID]] = []
    for statement in (*_DELETE_LIVE, _DELETE_TRASHED):
        removed += [
            (str(entity), record_id) for entity, record_id in await session.execute(statement, {"id": customer_id})
        ]
    return removed


# Every id the history knows of the customer's records: also those purged before the erasure.
_RECORD_ERASED = text(
    "INSERT INTO erased_ids (id, entity, customer_id) "
    "SELECT id, entity, CAST(:customer_id AS uuid) "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:entities AS text[])) AS r(id, entity) "
    "UNION SELECT entity_id, entity, CAST(:customer_id AS uuid) "
    "FROM history WHERE customer_id = CAST(:customer_id AS uuid) "
    "ON CONFLICT (id) DO NOTHING"
)


async def record_erased(session: AsyncSession, customer_id: UUID, removed: list[tuple[str, UUID]]) -> None:
    """Remember the ids, so every endpoint answers 410 for them. Run before the `erased` entry."""
    await session.execute(
        _RECORD_ERASED,
        {
            "customer_id": customer_id,
            "ids": [record_id for _, record_id in removed] + [customer_id],
            "entities": [entity for entity, _ in removed] + ["customer"],
        },
    )


# A saved answer is a create's 201 body (crm.idempotency): a customer's carries its id, a
# contact's or interaction's its `customer_id`, each as the canonical lower-case UUID text. So
# an answer that names the customer id (or, belt and braces, one of its contacts' ids) is
# exactly an answer about the person; a random UUID cannot appear in another answer by chance.
_FORGET_ANSWERS = text(
    "DELETE FROM idempotency_keys WHERE body LIKE ANY (SELECT '%' || i || '%' FROM unnest(CAST(:ids AS text[])) i)"
)


async def forget_answers(session: AsyncSession, ids: list[UUID]) -> int:
    result = await session.execute(_FORGET_ANSWERS, {"ids": [str(i) for i in ids]})
    return int(result.rowcount)  # type: ignore[attr-defined]


_FORGET_ORDERS = (
    text("DELETE FROM order_projections WHERE customer_id = :id"),
    text("DELETE FROM customer_order_figures WHERE customer_id = :id"),
)


async def forget_orders(session: AsyncSession, customer_id: UUID) -> None:
    """The projection of the customer's orders (the Order Service keeps its own records)."""
    for statement in _FORGET_ORDERS:
        await session.execute(statement, {"id": customer_id})


# The typo tier's dictionary keeps words nobody has any more (customer_words.sql); the person's
# own words go unless a live customer still has them (found by the trigram index, then checked
# word for word). A customer created concurrently with one of those words may lose it from the
# dictionary until `crm_rebuild_customer_words()`: the typo tier then misses it, nothing else does.
_FORGET_WORDS = text(
    "DELETE FROM customer_words w "
    "WHERE w.word IN (SELECT crm_customer_words(CAST(:first_name AS text), CAST(:last_name AS text), "
    "                                           CAST(:email AS text), CAST(:company_name AS text))) "
    "AND NOT EXISTS ("
    "  SELECT FROM customers c "
    "  WHERE crm_customer_search_text(c.first_name, c.last_name, c.email, c.company_name, c.tax_id, c.phone) "
    "        LIKE '%' || w.word || '%' "
    "    AND w.word IN (SELECT crm_customer_words(c.first_name, c.last_name, c.email, c.company_name))"
    ")"
)


async def forget_words(session: AsyncSession, record: dict[str, Any]) -> None:
    values = {name: record.get(name) for name in ("first_name", "last_name", "email", "company_name")}
    await session.execute(_FORGET_WORDS, values)


# The same for the interactions' dictionary (interactions/sql/words.sql): the words of the
# person's interactions, live and trashed, read before they go, then each dropped unless a live
# interaction still holds it (the trigram index finds the candidates, the word list decides).
_INTERACTION_WORDS = text(
    "SELECT DISTINCT w FROM interactions i, crm_interaction_words(i.subject, i.description) AS w "
    "WHERE i.customer_id = :id "
    "UNION SELECT w FROM trash t, crm_interaction_words(t.record->>'subject', t.record->>'description') AS w "
    "WHERE t.customer_id = :id AND t.entity = 'interaction'"
)
_FORGET_INTERACTION_WORDS = text(
    "DELETE FROM interaction_words w "
    "WHERE w.word = ANY (CAST(:words AS text[])) "
    "AND NOT EXISTS ("
    "  SELECT FROM interactions i "
    "  WHERE crm_interaction_search_text(i.subject, i.description) LIKE '%' || w.word || '%' "
    "    AND w.word IN (SELECT crm_interaction_words(i.subject, i.description))"
    ")"
)


async def interaction_words(session: AsyncSession, customer_id: UUID) -> list[str]:
    """The words of the customer's interactions (live and trashed): read before they are removed."""
    return [str(word) for word in await session.scalars(_INTERACTION_WORDS, {"id": customer_id})]


async def forget_interaction_words(session: AsyncSession, words: list[str]) -> None:
    """Drop the words no live interaction holds any more (after the person's were removed)."""
    if words:
        await session.execute(_FORGET_INTERACTION_WORDS, {"words": words})


# On a miss only (crm.errors): any of the ids a 404 named, or the path held.
_ERASED_SQL = "SELECT entity, id FROM erased_ids WHERE id = ANY($1::uuid[]) LIMIT 1"


async def erased_one(connection: asyncpg.Connection, ids: list[UUID]) -> tuple[str, UUID] | None:
    row = await connection.fetchrow(_ERASED_SQL, ids)
    return (str(row["entity"]), row["id"]) if row is not None else None
