"""Interaction use cases: business rules over typed SQL. Never commits; the request does.

Writes lock the interaction's row before reading it (FOR NO KEY UPDATE / FOR UPDATE), so two
concurrent edits queue up and the second sees the first's version instead of failing the
version check. The customer row is not locked: inserting an interaction takes only the KEY SHARE
lock its foreign key needs, so interactions never queue behind contact writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Date, UnaryExpression, cast, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from crm.common import db_errors
from crm.common.concurrency import Precondition
from crm.common.dates import DateRange
from crm.common.pagination import PageParams, SortOrder
from crm.common.search import Column, Matcher
from crm.contacts.models import Contact
from crm.customers.models import Customer
from crm.errors import DomainError, Forbidden, NotFound, ValidationFailed
from crm.interactions import aggregates
from crm.interactions.models import Interaction, InteractionType
from crm.interactions.schemas import InteractionCreate, InteractionStatistics, InteractionUpdate

SORTABLE = {
    "date": Interaction.date,
    "created_at": Interaction.created_at,
    "type": Interaction.type,
    "subject": Interaction.subject,
}

_CUSTOMER_FK = "fk_interactions_customer_id_customers"
_CONTACT_FK = "fk_interactions_contact_id_contacts"
_ANY_TIME = DateRange(None, None)


@dataclass(frozen=True, slots=True)
class InteractionFilters:
    dates: DateRange = _ANY_TIME
    type: InteractionType | None = None
    user_id: UUID | None = None
    customer_id: UUID | None = None


def _where(filters: InteractionFilters) -> list[ColumnElement[bool]]:
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
    # Ties broken by id in the same direction, so offset pages never repeat or skip a row
    # even when many interactions share one date.
    if order is SortOrder.ASC:
        return column.asc(), Interaction.id.asc()
    return column.desc(), Interaction.id.desc()


async def _count(session: AsyncSession, where: Sequence[ColumnElement[bool]]) -> int:
    return await session.scalar(select(func.count()).select_from(Interaction).where(*where)) or 0


async def _require_customer(session: AsyncSession, customer_id: UUID) -> None:
    if await session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        raise NotFound(f"customer {customer_id} not found")


async def _require_contact_of(session: AsyncSession, customer_id: UUID, contact_id: UUID) -> None:
    owner = await session.scalar(select(Contact.customer_id).where(Contact.id == contact_id))
    if owner != customer_id:
        raise ValidationFailed.field("contact_id", "is not a contact of this customer")


async def _flush(session: AsyncSession, customer_id: UUID) -> None:
    # The pre-checks above cannot see a customer or contact deleted by a concurrent request.
    known: dict[str, DomainError] = {
        _CUSTOMER_FK: NotFound(f"customer {customer_id} not found"),
        _CONTACT_FK: ValidationFailed.field("contact_id", "is not a contact of this customer"),
    }
    await db_errors.flush(session, known)


# --- reads ---


async def list_for_customer(
    session: AsyncSession, filters: InteractionFilters, page: PageParams, sort_by: str, order: SortOrder
) -> tuple[list[Interaction], int]:
    assert filters.customer_id is not None
    await _require_customer(session, filters.customer_id)
    where = _where(filters)
    total = await _count(session, where)
    stmt = select(Interaction).where(*where).order_by(*_ordering(sort_by, order))
    return list(await session.scalars(stmt.offset(page.offset).limit(page.limit))), total


async def list_with_customers(
    session: AsyncSession, filters: InteractionFilters, page: PageParams, sort_by: str, order: SortOrder
) -> tuple[list[tuple[Interaction, Customer]], int]:
    where = _where(filters)
    total = await _count(session, where)
    stmt = (
        select(Interaction, Customer)
        .join(Customer, Customer.id == Interaction.customer_id)
        .where(*where)
        .order_by(*_ordering(sort_by, order))
    )
    result = await session.execute(stmt.offset(page.offset).limit(page.limit))
    return [(interaction, customer) for interaction, customer in result], total


async def _raw_tally(session: AsyncSession, filters: InteractionFilters) -> aggregates.Tally:
    """Counts by type, UTC day and user from the interactions table, in one GROUPING SETS query."""
    day = cast(func.timezone("UTC", Interaction.date), Date)
    grouped = (Interaction.type, day, Interaction.user_id)
    stmt = (
        select(*grouped, func.grouping(*grouped), func.count())
        .where(*_where(filters))
        .group_by(
            func.grouping_sets(tuple_(Interaction.type), tuple_(day), tuple_(Interaction.user_id)),
        )
    )
    tally = aggregates.Tally()
    # GROUPING() is a bitmask of the columns *not* grouped in a row: 0b011 = grouped by type only.
    for type_, date_, user_id, not_grouped, count in await session.execute(stmt):
        if not_grouped == 0b011:
            tally.by_type[type_] += count
        elif not_grouped == 0b101:
            tally.by_date[date_.isoformat()] += count
        elif not_grouped == 0b110:
            tally.by_user[str(user_id)] += count
    return tally


async def statistics(session: AsyncSession, filters: InteractionFilters) -> InteractionStatistics:
    """Counts by type, UTC day and user.

    For one customer the interactions are counted directly (its index keeps that small).
    Otherwise whole UTC days come from the trigger-maintained roll-ups and only the partial
    days at the edges of the range from the interactions table, so the cost does not grow
    with the table. One REPEATABLE READ snapshot keeps the pieces consistent with each other.
    """
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    if filters.customer_id is not None:
        tally = await _raw_tally(session, filters)
    else:
        pieces = aggregates.split(filters.dates)
        tally = await aggregates.whole_days(session, pieces, filters.user_id)
        for edge in pieces.edges:
            tally.add(await _raw_tally(session, replace(filters, dates=edge)))
    by_type = {t.value: tally.by_type.get(t.value, 0) for t in InteractionType}
    return InteractionStatistics(
        total=sum(by_type.values()),
        by_type=by_type,
        by_date={d: n for d, n in sorted(tally.by_date.items()) if n},
        by_user={u: n for u, n in sorted(tally.by_user.items(), key=lambda item: (-item[1], item[0])) if n},
    )


async def search_interactions(
    session: AsyncSession, query: str, customer_id: UUID | None, limit: int
) -> list[tuple[Interaction, Customer]]:
    matcher = Matcher(query)
    text_columns: list[Column] = [Interaction.subject, Interaction.description]
    stmt = (
        select(Interaction, Customer)
        .join(Customer, Customer.id == Interaction.customer_id)
        .where(matcher.where(text_columns))
    )
    if customer_id is not None:
        stmt = stmt.where(Interaction.customer_id == customer_id)
    stmt = stmt.order_by(matcher.rank(text_columns), Interaction.date.desc(), Interaction.id.desc()).limit(limit)
    return [(interaction, customer) for interaction, customer in await session.execute(stmt)]


async def get_with_customer(session: AsyncSession, interaction_id: UUID) -> tuple[Interaction, Customer]:
    row = (
        await session.execute(
            select(Interaction, Customer)
            .join(Customer, Customer.id == Interaction.customer_id)
            .where(Interaction.id == interaction_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"interaction {interaction_id} not found")
    return row[0], row[1]


# --- writes ---


async def create_interaction(session: AsyncSession, data: InteractionCreate, author_id: UUID) -> Interaction:
    await _require_customer(session, data.customer_id)
    if data.contact_id is not None:
        await _require_contact_of(session, data.customer_id, data.contact_id)
    # An absent date is left to the column default (the transaction's now()).
    fields = data.model_dump(exclude_none=True)
    fields["type"] = data.type.value
    interaction = Interaction(**fields, user_id=author_id)
    session.add(interaction)
    await _flush(session, data.customer_id)
    return interaction


async def _locked(
    session: AsyncSession,
    interaction_id: UUID,
    author_only: UUID | None,
    precondition: Precondition | None,
    *,
    for_delete: bool = False,
) -> Interaction:
    """The interaction, row-locked, after checking the author and the If-Match precondition."""
    stmt = select(Interaction).where(Interaction.id == interaction_id)
    # FOR NO KEY UPDATE for edits: they do not block inserts that merely reference the row.
    interaction = await session.scalar(stmt.with_for_update(key_share=not for_delete))
    if interaction is None:
        raise NotFound(f"interaction {interaction_id} not found")
    if author_only is not None and interaction.user_id != author_only:
        action = "delete" if for_delete else "update"
        raise Forbidden(f"you may only {action} interactions you recorded")
    if precondition is not None:
        precondition.check(interaction.version)
    return interaction


async def update_interaction(
    session: AsyncSession,
    interaction_id: UUID,
    data: InteractionUpdate,
    author_only: UUID | None,
    precondition: Precondition | None = None,
) -> Interaction:
    """Apply a partial update; `author_only` restricts it to interactions that user recorded."""
    interaction = await _locked(session, interaction_id, author_only, precondition)
    changes = data.changes()
    new_customer = changes.pop("customer_id", None)
    if "customer_id" in data.model_fields_set and new_customer != interaction.customer_id:
        raise ValidationFailed.field("customer_id", "cannot change; record the interaction under the other customer")
    contact_id = changes.get("contact_id")
    if contact_id is not None and contact_id != interaction.contact_id:
        await _require_contact_of(session, interaction.customer_id, contact_id)
    if "type" in changes:
        changes["type"] = changes["type"].value
    for name, value in changes.items():
        setattr(interaction, name, value)
    await _flush(session, interaction.customer_id)
    return interaction


async def delete_interaction(
    session: AsyncSession,
    interaction_id: UUID,
    author_only: UUID | None,
    precondition: Precondition | None = None,
) -> None:
    interaction = await _locked(session, interaction_id, author_only, precondition, for_delete=True)
    await session.delete(interaction)
    await session.flush()
