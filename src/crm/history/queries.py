"""History's read statements, on the read pool's driver connection.

Every page walks one index newest first, (at, id) descending, from a keyset: a customer's
entries by ix_history_customer_id_at_id, one user's by ix_history_actor_user_id_at_id,
everything by ix_history_at_id. The other filters are checked on the rows the walk meets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from uuid import UUID

import asyncpg
from sqlalchemy import ColumnElement, String, bindparam, cast, exists, or_, select, tuple_
from sqlalchemy.types import DateTime, Integer, Uuid

from crm.customers.models import Customer
from crm.db.reads import DriverStatement
from crm.erasure.models import ErasedId
from crm.history.models import HistoryEntry


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    customer_id: UUID | None = None
    entity: str | None = None
    action: str | None = None
    field: str | None = None
    user_id: UUID | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class Keyset:
    at: datetime
    id: UUID


_COLUMNS = (
    HistoryEntry.id,
    HistoryEntry.at,
    HistoryEntry.entity,
    HistoryEntry.entity_id,
    HistoryEntry.customer_id,
    HistoryEntry.action,
    HistoryEntry.actor_user_id,
    HistoryEntry.actor_role,
    HistoryEntry.request_id,
    HistoryEntry.version,
    # As text: the read pool has no JSON codec, and the answer is built from parsed values.
    cast(HistoryEntry.changes, String).label("changes"),
)


@lru_cache(maxsize=256)
def _page_statement(shape: tuple[bool, ...]) -> DriverStatement:
    """The page's statement for the filters present (each shape compiled once)."""
    customer, entity, action, field, user, start, end, after = shape
    where: list[ColumnElement[bool]] = []
    if customer:
        where.append(HistoryEntry.customer_id == bindparam("customer_id", type_=Uuid))
    if entity:
        where.append(HistoryEntry.entity == bindparam("entity", type_=String))
    if action:
        where.append(HistoryEntry.action == bindparam("action", type_=String))
    if field:
        where.append(HistoryEntry.changes.has_key(bindparam("field", type_=String)))
    if user:
        where.append(HistoryEntry.actor_user_id == bindparam("user_id", type_=Uuid))
    if start:
        where.append(HistoryEntry.at >= bindparam("start", type_=DateTime(timezone=True)))
    if end:
        where.append(HistoryEntry.at < bindparam("end", type_=DateTime(timezone=True)))
    if after:
        where.append(
            tuple_(HistoryEntry.at, HistoryEntry.id)
            < tuple_(bindparam("after_at", type_=DateTime(timezone=True)), bindparam("after_id", type_=Uuid))
        )
    columns = list(_COLUMNS)
    if customer:
        # Whether an erasure removed the customer (its redacted entries stay, but answer 410):
        # one index probe inside the page's statement, no round trip of its own.
        erased = exists().where(ErasedId.id == bindparam("customer_id", type_=Uuid))
        columns.append(erased.label("customer_erased"))
    statement = (
        select(*columns)
        .where(*where)
        .order_by(HistoryEntry.at.desc(), HistoryEntry.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )
    return DriverStatement.of(statement)


async def page(
    connection: asyncpg.Connection, filters: HistoryFilters, after: Keyset | None, limit: int
) -> list[asyncpg.Record]:
    """Up to `limit` entries, newest first, after the keyset."""
    values = {
        "customer_id": filters.customer_id,
        "entity": filters.entity,
        "action": filters.action,
        "field": filters.field,
        "user_id": filters.user_id,
        "start": filters.start,
        "end": filters.end,
        "after_at": after.at if after else None,
        "after_id": after.id if after else None,
        "limit": limit,
    }
    shape = (
        filters.customer_id is not None,
        filters.entity is not None,
        filters.action is not None,
        filters.field is not None,
        filters.user_id is not None,
        filters.start is not None,
        filters.end is not None,
        after is not None,
    )
    statement = _page_statement(shape)
    return await statement.fetch(connection, {name: values[name] for name in statement.names})


_CUSTOMER_KNOWN = DriverStatement.of(
    select(
        or_(
            exists().where(Customer.id == bindparam("customer_id", type_=Uuid)),
            exists().where(HistoryEntry.customer_id == bindparam("customer_id", type_=Uuid)),
        )
    )
)


async def customer_known(connection: asyncpg.Connection, customer_id: UUID) -> bool:
    """Whether the customer exists, or did (its history outlives it)."""
    rows = await _CUSTOMER_KNOWN.fetch(connection, {"customer_id": customer_id})
    return bool(rows[0][0])


_CUSTOMER_ERASED = DriverStatement.of(select(exists().where(ErasedId.id == bindparam("customer_id", type_=Uuid))))


async def customer_erased(connection: asyncpg.Connection, customer_id: UUID) -> bool:
    """Whether an erasure removed the customer (its redacted entries stay, but answer 410)."""
    rows = await _CUSTOMER_ERASED.fetch(connection, {"customer_id": customer_id})
    return bool(rows[0][0])
