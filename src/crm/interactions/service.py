"""Interaction use cases: business rules over typed SQL. Never commits; the request does.

Writes lock the interaction's row before reading it (FOR NO KEY UPDATE / FOR UPDATE), so two
concurrent edits queue up and the second sees the first's version instead of failing the
version check. The customer row is not locked: inserting an interaction takes only the KEY SHARE
lock its foreign key needs, so interactions never queue behind contact writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Date, String, UnaryExpression, cast, func, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from crm.common import db_errors
from crm.common.concurrency import Precondition
from crm.common.dates import DateRange
from crm.common.pagination import Cursor, PageParams, SortOrder
from crm.common.search import Column, Matcher
from crm.contacts.models import Contact
from crm.customers.models import Customer
from crm.errors import DomainError, Forbidden, NotFound, ValidationFailed
from crm.interactions import aggregates
from crm.interactions.models import Interaction, InteractionType, search_text_of
from crm.interactions.schemas import InteractionCreate, InteractionStatistics, InteractionUpdate

SORTABLE = {
    "date": Interaction.date,
    "created_at": Interaction.created_at,
    "type": Interaction.type,
    "subject": Interaction.subject,
}

# Every sortable column is NOT NULL, so a cursor is a plain (column, id) row comparison.
_TIMESTAMPS = frozenset({"date", "created_at"})

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


def _not_issued() -> ValidationFailed:
    return ValidationFailed.field("cursor", "is not a cursor this service issued")


def _sort_value(value: object, sort_by: str) -> object:
    """A cursor's sort value as the column compares it; ValueError if no row could have had it."""
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(value)
    value.encode()  # a lone surrogate (UnicodeEncodeError is a ValueError) could not reach the database
    if sort_by not in _TIMESTAMPS:
        return value
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(value)
    return moment.astimezone(UTC)


def _after(cursor: Cursor, sort_by: str, order: SortOrder) -> ColumnElement[bool]:
    """Rows strictly after the cursor's row in (sort column, id) order: a row comparison that walks the index."""
    if cursor.sort_by != sort_by or cursor.order != order.value:
        raise ValidationFailed.field("cursor", f"was issued for sortBy={cursor.sort_by} sortOrder={cursor.order}")
    try:
        value = _sort_value(cursor.value, sort_by)
        last_id = UUID(cursor.id)
    except (ValueError, OverflowError):
        raise _not_issued() from None
    key = tuple_(SORTABLE[sort_by], Interaction.id)
    return key > (value, last_id) if order is SortOrder.ASC else key < (value, last_id)


def _cursor_of(interaction: Interaction, sort_by: str, order: SortOrder) -> str:
    value = getattr(interaction, sort_by)
    encoded = value.isoformat() if isinstance(value, datetime) else value
    return Cursor(sort_by, order.value, encoded, str(interaction.id)).encode()


def _keyset(
    where: list[ColumnElement[bool]], page: PageParams, sort_by: str, order: SortOrder
) -> list[ColumnElement[bool]]:
    return [*where, _after(page.cursor, sort_by, order)] if page.cursor is not None else where


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
) -> tuple[list[Interaction], int, str | None]:
    """A page of one customer's interactions, the total, and the next page's cursor (None on the last)."""
    assert filters.customer_id is not None
    await _require_customer(session, filters.customer_id)
    where = _where(filters)
    total = await _count(session, where)
    stmt = select(Interaction).where(*_keyset(where, page, sort_by, order)).order_by(*_ordering(sort_by, order))
    # One row beyond the page tells whether there is a next one.
    rows = list(await session.scalars(stmt.offset(page.offset).limit(page.limit + 1)))
    next_cursor = _cursor_of(rows[page.limit - 1], sort_by, order) if len(rows) > page.limit else None
    return rows[: page.limit], total, next_cursor


async def list_with_customers(
    session: AsyncSession, filters: InteractionFilters, page: PageParams, sort_by: str, order: SortOrder
) -> tuple[list[tuple[Interaction, Customer]], int, str | None]:
    """A page of interactions across customers, the total, and the next page's cursor (None on the last)."""
    where = _where(filters)
    total = await _count(session, where)
    # The page's ids first (an index-only walk for a deep offset), then their rows and customers:
    # joined before the offset, every skipped row would cost a customer look-up.
    page_ids = (
        select(Interaction.id)
        .where(*_keyset(where, page, sort_by, order))
        .order_by(*_ordering(sort_by, order))
        .offset(page.offset)
        .limit(page.limit + 1)
        .subquery()
    )
    stmt = (
        select(Interaction, Customer)
        .join(page_ids, page_ids.c.id == Interaction.id)
        .join(Customer, Customer.id == Interaction.customer_id)
        .order_by(*_ordering(sort_by, order))
    )
    rows = [(interaction, customer) for interaction, customer in await session.execute(stmt)]
    next_cursor = _cursor_of(rows[page.limit - 1][0], sort_by, order) if len(rows) > page.limit else None
    return rows[: page.limit], total, next_cursor


async def _raw_tally(connection: AsyncConnection, filters: InteractionFilters) -> aggregates.Tally:
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
    for type_, date_, user_id, not_grouped, count in await connection.execute(stmt):
        if not_grouped == 0b011:
            tally.by_type[type_] += count
        elif not_grouped == 0b101:
            tally.by_date[date_.isoformat()] += count
        elif not_grouped == 0b110:
            tally.by_user[str(user_id)] += count
    return tally


async def statistics(engine: AsyncEngine, filters: InteractionFilters) -> str:
    """Counts by type, UTC day and user, as the response's JSON document (see _statistics)."""
    async with engine.connect() as connection:
        return await _statistics(await connection.execution_options(isolation_level="AUTOCOMMIT"), filters)


async def _statistics(connection: AsyncConnection, filters: InteractionFilters) -> str:
    """Counts by type, UTC day and user, as the response's JSON document.

    For one customer the interactions are counted directly (its index keeps that small).
    Otherwise whole UTC days come from the trigger-maintained roll-ups and only the partial
    days at the edges of the range from the interactions table, so the cost does not grow
    with the table. Whole days of everyone (the dashboards' poll) are one statement that
    renders the document; anything else reads its pieces in one REPEATABLE READ snapshot.
    """
    pieces = aggregates.split(filters.dates)
    if filters.customer_id is None and filters.user_id is None and not pieces.edges:
        driver = (await connection.get_raw_connection()).driver_connection
        return await aggregates.statistics_document(driver, pieces, [t.value for t in InteractionType])
    snapshot = await connection.execution_options(isolation_level="REPEATABLE READ")
    async with snapshot.begin():
        if filters.customer_id is not None:
            tally = await _raw_tally(snapshot, filters)
        else:
            tally = await aggregates.whole_days(snapshot, pieces, filters.user_id)
            for edge in pieces.edges:
                tally.add(await _raw_tally(snapshot, replace(filters, dates=edge)))
    by_type = {t.value: tally.by_type.get(t.value, 0) for t in InteractionType}
    return InteractionStatistics(
        total=sum(by_type.values()),
        by_type=by_type,
        by_date={d: n for d, n in sorted(tally.by_date.items()) if n},
        by_user={u: n for u, n in sorted(tally.by_user.items(), key=lambda item: (-item[1], item[0])) if n},
    ).model_dump_json(by_alias=True)


def _document() -> ColumnElement[str]:
    document: ColumnElement[str] = search_text_of(Interaction.subject, Interaction.description)
    return document


# How similar (pg_trgm word_similarity, 0..1) a typo must be to still count as a match, as for customers.
TYPO_THRESHOLD = 0.4


async def search_interactions(
    session: AsyncSession, query: str, customer_id: UUID | None, limit: int
) -> list[tuple[Interaction, Customer]]:
    """Exact matches first, then prefix, then substring; newest first within a tier; typos last.

    The trigram-indexed document finds the candidates, the per-field conditions decide; only
    when nothing matches literally does the typo-tolerant pass run.
    """
    matcher = Matcher(query)
    text_columns: list[Column] = [Interaction.subject, Interaction.description]
    where = [matcher.prefilter(_document()), matcher.where(text_columns)]
    if customer_id is not None:
        where.append(Interaction.customer_id == customer_id)
    found = await _top_with_customers(session, where, matcher.rank(text_columns), limit)
    if not found:
        found = await _typo_tolerant(session, query, customer_id, limit)
    return found


async def _typo_tolerant(
    session: AsyncSession, query: str, customer_id: UUID | None, limit: int
) -> list[tuple[Interaction, Customer]]:
    """Words of subject or description similar to the query ("Quartrely" finds "Quarterly"), most similar first."""
    await session.execute(text(f"SET LOCAL pg_trgm.word_similarity_threshold = {TYPO_THRESHOLD}"))
    lowered = func.lower(literal(query, String))
    document = _document()
    where: list[ColumnElement[bool]] = [lowered.op("<%")(document)]
    if customer_id is not None:
        where.append(Interaction.customer_id == customer_id)
    # The distance pg_trgm's <<-> reports: smallest is most similar.
    distance = 1 - func.word_similarity(lowered, document)
    return await _top_with_customers(session, where, distance, limit)


async def _top_with_customers(
    session: AsyncSession, where: Sequence[ColumnElement[bool]], score: ColumnElement[Any], limit: int
) -> list[tuple[Interaction, Customer]]:
    """The first `limit` interactions by (score, newest), with their customers.

    The customers are joined to those rows only: joined before the limit, a common word
    would look up a customer for every one of its candidates.
    """
    scored = score.label("score")
    top = (
        select(Interaction, scored)
        .where(*where)
        .order_by(scored, Interaction.date.desc(), Interaction.id.desc())
        .limit(limit)
        .subquery()
    )
    found = aliased(Interaction, top)
    stmt = (
        select(found, Customer)
        .join(Customer, Customer.id == found.customer_id)
        .order_by(top.c.score, found.date.desc(), found.id.desc())
    )
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
