"""The interactions' read statements: typed select()s over the request's session.

The rules (which statement answers what, cursors, errors) are in crm.interactions.service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import ColumnElement, Date, UnaryExpression, bindparam, cast, func, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from crm.common import tiers
from crm.common.dates import DateRange
from crm.common.pagination import SortOrder
from crm.contacts.models import Contact
from crm.customers.models import Customer
from crm.db.reads import DriverStatement
from crm.interactions import aggregates
from crm.interactions.models import Interaction, InteractionType, InteractionWord, search_text_of

SORTABLE = {
    "date": Interaction.date,
    "created_at": Interaction.created_at,
    "type": Interaction.type,
    "subject": Interaction.subject,
}

_ANY_TIME = DateRange(None, None)


@dataclass(frozen=True, slots=True)
class InteractionFilters:
    dates: DateRange = _ANY_TIME
    type: InteractionType | None = None
    user_id: UUID | None = None
    customer_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where the previous page ended, as the sort column and the id compare it."""

    value: object
    last_id: UUID


def conditions(filters: InteractionFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if filters.dates.start is not None:
        where.append(Interaction.date >= filters.dates.start)
    if filters.dates.end is not None:
        where.append(Interaction.date < filters.dates.end)  # DateRange.end is exclusive
    if filters.type is not None:
        where.append(Interaction.type == filters.type.value)
    if filters.user_id is not None:
        where.append(Interaction.user_id == filters.user_id)
    if filters.customer_id is not None:
        where.append(Interaction.customer_id == filters.customer_id)
    return where


def _ordering(sort_by: str, order: SortOrder) -> tuple[UnaryExpression[Any], UnaryExpression[Any]]:
    column = SORTABLE[sort_by]
    # Ties broken by id in the same direction, so pages never repeat or skip a row even when
    # many interactions share one date.
    if order is SortOrder.ASC:
        return column.asc(), Interaction.id.asc()
    return column.desc(), Interaction.id.desc()


def _page_where(
    filters: InteractionFilters, keyset: Keyset | None, sort_by: str, order: SortOrder
) -> list[ColumnElement[bool]]:
    where = conditions(filters)
    if keyset is not None:
        # A row comparison, which walks the (column, id) index.
        key = tuple_(SORTABLE[sort_by], Interaction.id)
        after = (keyset.value, keyset.last_id)
        where.append(key > after if order is SortOrder.ASC else key < after)
    return where


def _rows(count: int) -> Any:
    """A LIMIT or OFFSET in the statement's text (see crm.common.tiers on generic plans)."""
    return literal_column(str(int(count)))


async def customer_exists(session: AsyncSession, customer_id: UUID) -> bool:
    return await session.scalar(select(Customer.id).where(Customer.id == customer_id)) is not None


async def contact_owner(session: AsyncSession, contact_id: UUID) -> UUID | None:
    return await session.scalar(select(Contact.customer_id).where(Contact.id == contact_id))


async def count(session: AsyncSession, filters: InteractionFilters) -> int:
    """Counted from the rows themselves: for one customer, or a piece of a day."""
    return await session.scalar(select(func.count()).select_from(Interaction).where(*conditions(filters))) or 0


async def total(session: AsyncSession, filters: InteractionFilters) -> int:
    """How many interactions meet the filters, exactly, without reading millions of rows.

    One customer's are counted by its index. Otherwise whole UTC days come from the
    trigger-kept roll-ups (by type and by user) and only the partial days at the edges of
    the range from the rows (through the date index).
    """
    if filters.customer_id is not None:
        return await count(session, filters)
    pieces = aggregates.split(filters.dates)
    type_ = filters.type.value if filters.type is not None else None
    found = await aggregates.whole_day_count(session, pieces, type_, filters.user_id)
    for edge in pieces.edges:
        found += await count(session, replace(filters, dates=edge))
    return found


async def customer_page(
    session: AsyncSession,
    filters: InteractionFilters,
    keyset: Keyset | None,
    sort_by: str,
    order: SortOrder,
    offset: int,
    limit: int,
) -> tuple[list[Interaction], int | None]:
    """Up to `limit` interactions of one customer and the filters' total, in one statement.

    The total rides along each row (None when the page is empty: the caller counts then).
    """
    assert filters.customer_id is not None
    counted = select(func.count()).select_from(Interaction).where(*conditions(filters)).scalar_subquery()
    stmt = (
        select(Interaction, counted.label("total"))
        .where(*_page_where(filters, keyset, sort_by, order))
        .order_by(*_ordering(sort_by, order))
        .offset(_rows(offset))
        .limit(_rows(limit))
    )
    rows = list(await session.execute(stmt))
    return [row[0] for row in rows], (rows[0][1] if rows else None)


async def page_with_customers(
    session: AsyncSession,
    filters: InteractionFilters,
    keyset: Keyset | None,
    sort_by: str,
    order: SortOrder,
    offset: int,
    limit: int,
) -> list[tuple[Interaction, Customer]]:
    """Up to `limit` interactions across customers, each with its customer."""
    # The page's ids first (an index-only walk for a deep offset), then their rows and customers:
    # joined before the offset, every skipped row would cost a customer look-up.
    page_ids = (
        select(Interaction.id)
        .where(*_page_where(filters, keyset, sort_by, order))
        .order_by(*_ordering(sort_by, order))
        .offset(_rows(offset))
        .limit(_rows(limit))
        .subquery()
    )
    stmt = (
        select(Interaction, Customer)
        .join(page_ids, page_ids.c.id == Interaction.id)
        .join(Customer, Customer.id == Interaction.customer_id)
        .order_by(*_ordering(sort_by, order))
    )
    return [(interaction, customer) for interaction, customer in await session.execute(stmt)]


async def with_customer(session: AsyncSession, interaction_id: UUID) -> tuple[Interaction, Customer] | None:
    row = (
        await session.execute(
            select(Interaction, Customer)
            .join(Customer, Customer.id == Interaction.customer_id)
            .where(Interaction.id == interaction_id)
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def with_customers(session: AsyncSession, ids: Sequence[UUID]) -> list[tuple[Interaction, Customer]]:
    """The interactions of `ids`, in that order, each with its customer."""
    if not ids:
        return []
    stmt = select(Interaction, Customer).join(Customer, Customer.id == Interaction.customer_id)
    found = {i.id: (i, c) for i, c in await session.execute(stmt.where(Interaction.id.in_(ids)))}
    return [found[i] for i in ids if i in found]  # one deleted in between is left out


# --- search ---

# One customer's interactions, by its index (a customer has few).
_OF_CUSTOMER = select(Interaction.id).where(Interaction.customer_id == bindparam("customer_id", type_=Uuid))

# Newest first within a tier. The exact and prefix keys are the subject and the first 200
# characters of the description (a query is at most 200: see the 2026-12-04 migration).
SEARCH = tiers.SearchSpec(
    entity=Interaction,
    text_columns=(Interaction.subject, Interaction.description),
    phone_columns=(),
    keys=(
        tiers.Key(tiers.bytewise(func.lower(Interaction.subject))),
        tiers.Key(
            tiers.bytewise(func.left(func.lower(Interaction.description), literal_column("200"))),
            where=Interaction.description.is_not(None),
        ),
    ),
    order=(Interaction.date.desc(), Interaction.id.desc()),
    document=search_text_of(Interaction.subject, Interaction.description),
    of_customer=_OF_CUSTOMER,
    vocabulary=InteractionWord,
)


# --- statistics ---


async def raw_tally(connection: asyncpg.Connection, filters: InteractionFilters) -> aggregates.Tally:
    """Counts by type, UTC day and user from the interactions table, in one GROUPING SETS query."""
    day = cast(func.timezone("UTC", Interaction.date), Date)
    grouped = (Interaction.type, day, Interaction.user_id)
    stmt = (
        select(*grouped, func.grouping(*grouped), func.count())
        .where(*conditions(filters))
        .group_by(
            func.grouping_sets(tuple_(Interaction.type), tuple_(day), tuple_(Interaction.user_id)),
        )
    )
    tally = aggregates.Tally()
    # GROUPING() is a bitmask of the columns *not* grouped in a row: 0b011 = grouped by type only.
    for type_, date_, user_id, not_grouped, n in await DriverStatement.of(stmt).fetch(connection, {}):
        if not_grouped == 0b011:
            tally.by_type[type_] += n
        elif not_grouped == 0b101:
            tally.by_date[date_.isoformat()] += n
        elif not_grouped == 0b110:
            tally.by_user[str(user_id)] += n
    return tally
