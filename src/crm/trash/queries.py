"""The trash's statements: moving rows into it (a delete), back out (a restore), away (the purge),
and the listing (on the read pool).

A move is one `WITH gone AS (DELETE ... RETURNING *) INSERT INTO trash SELECT ...`: the row
leaves the live table (whose DELETE triggers keep the counters, segments and roll-ups exact)
and lands here as `to_jsonb` of itself, in one statement. A restore is the reverse: an
`INSERT ... SELECT` of `jsonb_populate_record(NULL::<table>, record)`, whose INSERT triggers
count the row again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    false,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import DateTime, Uuid

from crm.contacts.models import Contact
from crm.customers.models import Customer
from crm.db.reads import DriverStatement
from crm.interactions.models import Interaction
from crm.trash.models import TrashedRow

_TRASH_COLUMNS = "entity, id, customer_id, deletion_id, head, author_id, record, unlinked, summary, deleted_by"

# What the listing shows of each row (the record itself may be long; the summary is enough to
# recognise it): a customer's name and company, a contact's name, an interaction's type and subject.
_SUMMARIES = {
    "customer": "concat_ws(' ', g.first_name, g.last_name) || coalesce(' (' || g.company_name || ')', '')",
    "contact": "concat_ws(' ', g.first_name, g.last_name)",
    "interaction": "g.type || ': ' || g.subject",
}


@dataclass(frozen=True, slots=True)
class Deletion:
    """One DELETE request's move: its id and who made it."""

    id: UUID
    deleted_by: UUID | None

    @classmethod
    def new(cls, deleted_by: UUID | None) -> Deletion:
        return cls(uuid4(), deleted_by)

    def values(self) -> dict[str, Any]:
        return {"deletion_id": self.id, "deleted_by": self.deleted_by}


def _move(table: str, entity: str, where: str, *, head: str, author: str = "NULL", unlinked: str = "NULL") -> Any:
    # The record's version is the one the `deleted` history entry gives the row (one step on).
    return text(
        f"WITH gone AS (DELETE FROM {table} WHERE {where} RETURNING *) "  # noqa: S608 - this module's fixed SQL
        f"INSERT INTO trash ({_TRASH_COLUMNS}) "
        f"SELECT '{entity}', g.id, {'g.id' if entity == 'customer' else 'g.customer_id'}, :deletion_id, {head}, "
        f"{author}, to_jsonb(g) || jsonb_build_object('version', g.version + 1), {unlinked}, "
        f"{_SUMMARIES[entity]}, :deleted_by "
        "FROM gone g"
    )


_MOVE_CUSTOMER = _move("customers", "customer", "id = :id", head="true")
_MOVE_CUSTOMERS_CONTACTS = _move("contacts", "contact", "customer_id = :id", head="false")
_MOVE_CUSTOMERS_INTERACTIONS = _move(
    "interactions", "interaction", "customer_id = :id", head="false", author="g.user_id"
)
_MOVE_CONTACT = _move("contacts", "contact", "id = :id", head="true", unlinked="CAST(:unlinked AS uuid[])")
_MOVE_INTERACTION = _move("interactions", "interaction", "id = :id", head="true", author="g.user_id")

# The contact's row lock first: it conflicts with the KEY SHARE lock a new interaction's
# foreign key takes, so no interaction can start pointing at the contact between the unlinking
# and the delete (which would otherwise null it through ON DELETE SET NULL, unrecorded).
_LOCK_CONTACT = text("SELECT id FROM contacts WHERE id = :id FOR UPDATE")
# A change of each interaction like any other (version, updated_at, a history entry), not the
# silent ON DELETE SET NULL: a client holding its old ETag must not write over it unawares.
_UNLINK = text(
    "UPDATE interactions SET contact_id = NULL, version = version + 1, updated_at = now() "
    "WHERE contact_id = :id RETURNING *"
)


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in result.mappings()]


async def move_customer(session: AsyncSession, customer_id: UUID, deletion: Deletion) -> None:
    """A customer with its interactions and contacts (in that order: the foreign keys)."""
    values = {"id": customer_id, **deletion.values()}
    for statement in (_MOVE_CUSTOMERS_INTERACTIONS, _MOVE_CUSTOMERS_CONTACTS, _MOVE_CUSTOMER):
        await session.execute(statement, values)


async def move_contact(session: AsyncSession, contact_id: UUID, deletion: Deletion) -> list[dict[str, Any]]:
    """A contact, remembering the interactions it leaves unattributed (a restore re-links them):
    those interactions' rows after the change, for their history entries."""
    await session.execute(_LOCK_CONTACT, {"id": contact_id})
    unlinked = _rows(await session.execute(_UNLINK, {"id": contact_id}))
    ids = [row["id"] for row in unlinked] or None
    await session.execute(_MOVE_CONTACT, {"id": contact_id, "unlinked": ids, **deletion.values()})
    return unlinked


async def move_interaction(session: AsyncSession, interaction_id: UUID, deletion: Deletion) -> None:
    await session.execute(_MOVE_INTERACTION, {"id": interaction_id, **deletion.values()})


# --- restore ---------------------------------------------------------------------------------


async def locked(session: AsyncSession, entity: str, record_id: UUID) -> TrashedRow | None:
    """The trash row, locked against a concurrent restore, purge or erasure (which wait, then miss it)."""
    return await session.scalar(
        select(TrashedRow).where(TrashedRow.entity == entity, TrashedRow.id == record_id).with_for_update()
    )


async def in_trash(session: AsyncSession, entity: str, record_id: UUID) -> bool:
    found = await session.scalar(select(TrashedRow.id).where(TrashedRow.entity == entity, TrashedRow.id == record_id))
    return found is not None


async def is_live(session: AsyncSession, table: type[Customer | Contact | Interaction], record_id: UUID) -> bool:
    return await session.scalar(select(table.id).where(table.id == record_id)) is not None


def _restore(table: Table, where: str, overrides: Mapping[str, str]) -> Any:
    """INSERT the trash rows `where` selects back into `table`, as they were but for `overrides`."""
    names = [column.name for column in table.columns]
    values = ", ".join(overrides.get(name, f"r.{name}") for name in names)
    return text(
        f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 - the model's table and columns
        f"SELECT {values} FROM trash t CROSS JOIN LATERAL jsonb_populate_record(NULL::{table.name}, t.record) r "
        f"WHERE {where} RETURNING *"
    )


# A restore moves the version one step on again (deleted: v + 1, restored: v + 2), and the
# row's updated_at to the restore: it changed.
_MOVED = {"version": "r.version + 1", "updated_at": "now()"}
# A contact's interaction points at it again only if that contact is live (restored with it, or
# never deleted); otherwise NULL, as ON DELETE SET NULL would have left it.
_CONTACT_IF_LIVE = "CASE WHEN EXISTS (SELECT FROM contacts k WHERE k.id = r.contact_id) THEN r.contact_id END"

_RESTORE_CUSTOMER = _restore(Customer.__table__, "t.entity = 'customer' AND t.id = :id", _MOVED)  # type: ignore[arg-type]
_RESTORE_DELETIONS_CONTACTS = _restore(
    Contact.__table__,  # type: ignore[arg-type]
    "t.deletion_id = :deletion_id AND t.entity = 'contact'",
    _MOVED,
)
_RESTORE_DELETIONS_INTERACTIONS = _restore(
    Interaction.__table__,  # type: ignore[arg-type]
    "t.deletion_id = :deletion_id AND t.entity = 'interaction'",
    {**_MOVED, "contact_id": _CONTACT_IF_LIVE},
)
# Primary only when the customer has no primary now (then it has no contacts at all): a
# primary restored beside a newer primary comes back as an ordinary contact.
_RESTORE_CONTACT = _restore(
    Contact.__table__,  # type: ignore[arg-type]
    "t.entity = 'contact' AND t.id = :id",
    {
        **_MOVED,
        "is_primary": "NOT EXISTS (SELECT FROM contacts k WHERE k.customer_id = r.customer_id AND k.is_primary)",
    },
)
_RESTORE_INTERACTION = _restore(
    Interaction.__table__,  # type: ignore[arg-type]
    "t.entity = 'interaction' AND t.id = :id",
    {**_MOVED, "contact_id": _CONTACT_IF_LIVE},
)
_FORGET_DELETION = text("DELETE FROM trash WHERE deletion_id = :deletion_id")
_FORGET = text("DELETE FROM trash WHERE entity = :entity AND id = :id")

# The interactions a contact's delete unlinked point at it again, if nobody has since pointed
# them elsewhere; those in the trash themselves get the link back in their record.
_RELINK = text(
    "UPDATE interactions SET contact_id = :id, version = version + 1, updated_at = now() "
    "WHERE id = ANY(CAST(:unlinked AS uuid[])) AND customer_id = :customer_id AND contact_id IS NULL "
    "RETURNING *"
)
_RELINK_TRASHED = text(
    "UPDATE trash SET record = jsonb_set(record, '{contact_id}', to_jsonb(CAST(:id AS text))) "
    "WHERE entity = 'interaction' AND id = ANY(CAST(:unlinked AS uuid[])) AND record->'contact_id' = 'null'"
)
# An interaction restored without its trashed contact: the contact's restore re-links it.
_REMEMBER_UNLINKED = text(
    "UPDATE trash SET unlinked = array_append(coalesce(unlinked, '{}'), CAST(:interaction_id AS uuid)) "
    "WHERE entity = 'contact' AND id = :contact_id"
)


async def restore_customer(
    session: AsyncSession, customer_id: UUID, deletion_id: UUID
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The customer and exactly the rows its delete took (contacts before interactions: the keys)."""
    [customer] = _rows(await session.execute(_RESTORE_CUSTOMER, {"id": customer_id}))
    contacts = _rows(await session.execute(_RESTORE_DELETIONS_CONTACTS, {"deletion_id": deletion_id}))
    interactions = _rows(await session.execute(_RESTORE_DELETIONS_INTERACTIONS, {"deletion_id": deletion_id}))
    await session.execute(_FORGET_DELETION, {"deletion_id": deletion_id})
    return customer, contacts, interactions


async def restore_contact(session: AsyncSession, row: TrashedRow) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The contact as restored, and the rows of the interactions re-linked to it."""
    [contact] = _rows(await session.execute(_RESTORE_CONTACT, {"id": row.id}))
    relinked: list[dict[str, Any]] = []
    if row.unlinked:
        values = {"id": row.id, "unlinked": row.unlinked, "customer_id": row.customer_id}
        relinked = _rows(await session.execute(_RELINK, values))
        await session.execute(_RELINK_TRASHED, {"id": str(row.id), "unlinked": row.unlinked})
    await session.execute(_FORGET, {"entity": "contact", "id": row.id})
    return contact, relinked


async def restore_interaction(session: AsyncSession, row: TrashedRow) -> dict[str, Any]:
    [interaction] = _rows(await session.execute(_RESTORE_INTERACTION, {"id": row.id}))
    wanted = row.record.get("contact_id")
    if wanted is not None and interaction["contact_id"] is None:
        values = {"interaction_id": row.id, "contact_id": UUID(wanted)}
        await session.execute(_REMEMBER_UNLINKED, values)
    await session.execute(_FORGET, {"entity": "interaction", "id": row.id})
    return interaction


async def lock_customer_row(session: AsyncSession, customer_id: UUID, *, key_share: bool) -> bool:
    """Lock the live customer (as contact writers do, or as an interaction's key does); whether it is live."""
    lock = "FOR KEY SHARE" if key_share else "FOR NO KEY UPDATE"
    statement = text(f"SELECT id FROM customers WHERE id = :id {lock}")  # noqa: S608 - one of two fixed clauses
    found = await session.scalar(statement, {"id": customer_id})
    return found is not None


# --- purge -----------------------------------------------------------------------------------

# Heads that are due, locked without waiting (a restore holding one keeps it, and wins), then
# every row of their deletions: a customer goes with what its delete took, never in halves.
_PURGE_BATCH = text(
    "WITH due AS ("
    "  SELECT deletion_id FROM trash "
    "  WHERE head AND deleted_at <= now() - make_interval(days => CAST(:days AS integer)) "
    "  ORDER BY deleted_at LIMIT :batch FOR UPDATE SKIP LOCKED"
    ") DELETE FROM trash WHERE deletion_id IN (SELECT deletion_id FROM due) RETURNING head"
)


async def purge_batch(conn: AsyncConnection, days: int, batch: int) -> tuple[int, int]:
    """Purge up to `batch` deletions older than `days`: (deletions, rows) removed."""
    heads = list((await conn.execute(_PURGE_BATCH, {"days": days, "batch": batch})).scalars())
    return sum(1 for head in heads if head), len(heads)


# --- the listing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keyset:
    deleted_at: datetime
    id: UUID


# What a caller sees: None, every head; else each (entity, own) pair: that entity's heads, only
# those the caller authored when `own` (an employee's interactions, by the author index).
Shape = tuple[tuple[str, bool], ...] | None

_LISTED = (
    TrashedRow.entity,
    TrashedRow.id,
    TrashedRow.customer_id,
    TrashedRow.summary,
    TrashedRow.deleted_at,
    TrashedRow.deleted_by,
)


@lru_cache(maxsize=64)
def _page_statement(shape: Shape, after: bool) -> DriverStatement:
    # `head` itself (not `head IS true`): the partial indexes' predicate, which the planner must recognise.
    where: list[ColumnElement[bool]] = [TrashedRow.head == true()]
    if shape is not None:
        kinds = [
            and_(
                TrashedRow.entity == literal(entity, String), TrashedRow.author_id == bindparam("author_id", type_=Uuid)
            )
            if own
            else TrashedRow.entity == literal(entity, String)
            for entity, own in shape
        ]
        where.append(or_(*kinds) if kinds else false())
    if after:
        where.append(
            tuple_(TrashedRow.deleted_at, TrashedRow.id)
            < tuple_(bindparam("after_at", type_=DateTime(timezone=True)), bindparam("after_id", type_=Uuid))
        )
    statement = (
        select(*_LISTED)
        .where(*where)
        .order_by(TrashedRow.deleted_at.desc(), TrashedRow.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )
    return DriverStatement.of(statement)


async def page(
    connection: asyncpg.Connection, shape: Shape, author_id: UUID, after: Keyset | None, limit: int
) -> list[asyncpg.Record]:
    """Up to `limit` heads the shape lets the caller see, newest first, after the keyset."""
    statement = _page_statement(shape, after is not None)
    values: dict[str, Any] = {
        "author_id": author_id,
        "after_at": after.deleted_at if after else None,
        "after_id": after.id if after else None,
        "limit": limit,
    }
    return await statement.fetch(connection, {name: values[name] for name in statement.names if name in values})
