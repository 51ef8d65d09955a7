"""Erasure on request: the person and every trace of them, in one transaction.

What goes: the customer (live or in the trash), its contacts and interactions (live and in the
trash), the order projection's rows of it, the idempotency store's saved answers about it, and
its words in the typo tiers' dictionaries (customers' and interactions'). What stays: the
history entries and the kept events about them, each with
its structure (at, action, entity, actor, field names) and every value null; one `erased` entry
saying who erased how many records; and the erased ids (crm.erasure.models), for the 410s.

Locks: the live customer's row FOR UPDATE (every writer referencing it waits, then misses it),
or its trash row (as a restore or the purge would take it): a concurrent restore or delete of
the customer waits for the erasure and then finds nothing.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.db.reads import read_connection
from crm.erasure import queries
from crm.erasure.schemas import ErasureReceipt
from crm.errors import NotFound
from crm.events import outbox
from crm.history import service as history
from crm.trash import queries as trash


async def erase_customer(session: AsyncSession, customer_id: UUID, actor: history.Actor) -> ErasureReceipt:
    assert actor.user_id is not None
    record = await queries.lock_live(session, customer_id)
    if record is None:
        trashed = await trash.locked(session, "customer", customer_id)
        if trashed is None:
            # 410 for an id erased before (the error handler tells), else 404.
            raise NotFound(f"customer {customer_id} not found")
        record = trashed.record
    words = await queries.interaction_words(session, customer_id)
    removed = await queries.remove_records(session, customer_id)
    await queries.forget_words(session, record)
    await queries.forget_interaction_words(session, words)
    redacted = await history.redact_customer(session, customer_id)
    # The kept events of the person keep their shape with every value null; the `erased` event
    # written below tells consumers to forget the copies they hold.
    await outbox.redact(session, customer_id)
    await queries.record_erased(session, customer_id, removed)
    contact_ids = [record_id for entity, record_id in removed if entity == "contact"]
    await queries.forget_answers(session, [customer_id, *contact_ids])
    await queries.forget_orders(session, customer_id)
    counts = {
        "contacts": len(contact_ids),
        "interactions": sum(1 for entity, _ in removed if entity == "interaction"),
    }
    changes = history.Changes(actor)
    changes.erased(
        customer_id,
        {
            "contacts": (counts["contacts"], 0),
            "interactions": (counts["interactions"], 0),
            "history_entries_redacted": (None, redacted),
        },
    )
    await changes.write(session)
    erased_at = await session.scalar(select(func.now()))
    return ErasureReceipt(
        customer_id=customer_id,
        erased_at=erased_at,
        erased_by=actor.user_id,
        contacts=counts["contacts"],
        interactions=counts["interactions"],
        history_entries_redacted=redacted,
    )


async def erased_one(state: Any, ids: list[UUID]) -> str | None:
    """The 410's detail for the first of `ids` an erasure removed, or None (crm.errors asks,
    after a lookup missed)."""
    async with read_connection(state.read_pool, state.settings.db_pool_timeout) as connection:
        found = await queries.erased_one(connection, ids)
    if found is None:
        return None
    entity, record_id = found
    return f"{entity} {record_id} was erased"
