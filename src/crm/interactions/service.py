"""Interaction use cases: business rules over typed SQL. Never commits; the request does.

Writes lock the interaction's row before reading it (FOR NO KEY UPDATE / FOR UPDATE), so two
concurrent edits queue up and the second sees the first's version instead of failing the
version check. The customer row is not locked: inserting an interaction takes only the KEY SHARE
lock its foreign key needs, so interactions never queue behind contact writes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.common import db_errors, tiers
from crm.common.concurrency import Precondition
from crm.common.pagination import Cursor, PageParams, SortOrder
from crm.customers.models import Customer
from crm.errors import DomainError, Forbidden, NotFound, ValidationFailed
from crm.history import service as history
from crm.interactions import aggregates, queries
from crm.interactions.models import Interaction, InteractionType
from crm.interactions.queries import InteractionFilters
from crm.interactions.schemas import InteractionCreate, InteractionStatistics, InteractionUpdate
from crm.trash import queries as trash

__all__ = [
    "InteractionFilters",  # defined with the statements, built by the routers through this module
    "create_interaction",
    "delete_interaction",
    "get_with_customer",
    "list_for_customer",
    "list_with_customers",
    "search_interactions",
    "statistics",
    "update_interaction",
]

# Every sortable column is NOT NULL, so a cursor is a plain (column, id) row comparison.
_TIMESTAMPS = frozenset({"date", "created_at"})

_CUSTOMER_FK = "fk_interactions_customer_id_customers"
_CONTACT_FK = "fk_interactions_contact_id_contacts"


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


def _keyset(page: PageParams, sort_by: str, order: SortOrder) -> queries.Keyset | None:
    """Where the cursor's page ended, checked to be one this service issued for this order."""
    cursor = page.cursor
    if cursor is None:
        return None
    if cursor.sort_by != sort_by or cursor.order != order.value:
        raise ValidationFailed.field("cursor", f"was issued for sortBy={cursor.sort_by} sortOrder={cursor.order}")
    try:
        return queries.Keyset(_sort_value(cursor.value, sort_by), UUID(cursor.id))
    except (ValueError, OverflowError):
        raise _not_issued() from None


def _cursor_of(interaction: Interaction, sort_by: str, order: SortOrder) -> str:
    value = getattr(interaction, sort_by)
    encoded = value.isoformat() if isinstance(value, datetime) else value
    return Cursor(sort_by, order.value, encoded, str(interaction.id)).encode()


async def _require_customer(session: AsyncSession, customer_id: UUID) -> None:
    if not await queries.customer_exists(session, customer_id):
        raise NotFound(f"customer {customer_id} not found")


async def _require_contact_of(session: AsyncSession, customer_id: UUID, contact_id: UUID) -> None:
    if await queries.contact_owner(session, contact_id) != customer_id:
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
    keyset = _keyset(page, sort_by, order)
    # One row beyond the page tells whether there is a next one.
    rows, total = await queries.customer_page(session, filters, keyset, sort_by, order, page.offset, page.limit + 1)
    if total is None:  # an empty page: is there such a customer at all?
        await _require_customer(session, filters.customer_id)
        total = await queries.count(session, filters)
    next_cursor = _cursor_of(rows[page.limit - 1], sort_by, order) if len(rows) > page.limit else None
    return rows[: page.limit], total, next_cursor


async def list_with_customers(
    session: AsyncSession, filters: InteractionFilters, page: PageParams, sort_by: str, order: SortOrder
) -> tuple[list[tuple[Interaction, Customer]], int, str | None]:
    """A page of interactions across customers, the (exact) total, and the next page's cursor (None on the last)."""
    keyset = _keyset(page, sort_by, order)
    rows = await queries.page_with_customers(session, filters, keyset, sort_by, order, page.offset, page.limit + 1)
    total = await queries.total(session, filters)
    next_cursor = _cursor_of(rows[page.limit - 1][0], sort_by, order) if len(rows) > page.limit else None
    return rows[: page.limit], total, next_cursor


async def statistics(connection: asyncpg.Connection, filters: InteractionFilters) -> str:
    """Counts by type, UTC day and user, as the response's JSON document.

    For one customer the interactions are counted directly (its index keeps that small).
    Otherwise whole UTC days come from the trigger-maintained roll-ups and only the partial
    days at the edges of the range from the interactions table, so the cost does not grow
    with the table. Whole days of everyone (the dashboards' poll) are one statement that
    renders the document; anything else reads its pieces in one read-only REPEATABLE READ
    snapshot on the same read connection.
    """
    pieces = aggregates.split(filters.dates)
    if filters.customer_id is None and filters.user_id is None and not pieces.edges:
        return await aggregates.statistics_document(connection, pieces, [t.value for t in InteractionType])
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        if filters.customer_id is not None:
            tally = await queries.raw_tally(connection, filters)
        else:
            tally = await aggregates.whole_days(connection, pieces, filters.user_id)
            for edge in pieces.edges:
                tally.add(await queries.raw_tally(connection, replace(filters, dates=edge)))
    by_type = {t.value: tally.by_type.get(t.value, 0) for t in InteractionType}
    return InteractionStatistics(
        total=sum(by_type.values()),
        by_type=by_type,
        by_date={d: n for d, n in sorted(tally.by_date.items()) if n},
        by_user={u: n for u, n in sorted(tally.by_user.items(), key=lambda item: (-item[1], item[0])) if n},
    ).model_dump_json(by_alias=True)


async def search_interactions(
    session: AsyncSession,
    query: str,
    customer_id: UUID | None,
    limit: int,
    *,
    bounds: tiers.Bounds = tiers.DEFAULT_BOUNDS,
) -> list[tuple[Interaction, Customer]]:
    """Exact matches first, then prefix, then substring; newest first within a tier; typos last.

    Each tier is found by an index, bounded by `limit` (crm.common.tiers); only when nothing
    matches literally does the typo-tolerant pass run, for a query with a word of at least
    `tiers.TYPO_MIN_WORD` letters.
    """
    found = await tiers.find(session, queries.SEARCH, query, customer_id, limit, bounds)
    return await queries.with_customers(session, found)


async def get_with_customer(session: AsyncSession, interaction_id: UUID) -> tuple[Interaction, Customer]:
    found = await queries.with_customer(session, interaction_id)
    if found is None:
        raise NotFound(f"interaction {interaction_id} not found")
    return found


# --- writes ---


async def create_interaction(session: AsyncSession, data: InteractionCreate, actor: history.Actor) -> Interaction:
    """A new interaction, authored by the actor."""
    await _require_customer(session, data.customer_id)
    if data.contact_id is not None:
        await _require_contact_of(session, data.customer_id, data.contact_id)
    # An absent date is left to the column default (the transaction's now()).
    fields = data.model_dump(exclude_none=True)
    fields["type"] = data.type.value
    interaction = Interaction(**fields, user_id=actor.user_id)
    session.add(interaction)
    await _flush(session, data.customer_id)
    changes = history.Changes(actor)
    changes.created(interaction)
    await changes.write(session)
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
    actor: history.Actor,
    precondition: Precondition | None = None,
) -> Interaction:
    """Apply a partial update; `author_only` restricts it to interactions that user recorded."""
    interaction = await _locked(session, interaction_id, author_only, precondition)
    made = history.Changes(actor)
    made.watch(interaction)
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
    await made.write(session)
    return interaction


async def delete_interaction(
    session: AsyncSession,
    interaction_id: UUID,
    author_only: UUID | None,
    actor: history.Actor,
    precondition: Precondition | None = None,
) -> None:
    interaction = await _locked(session, interaction_id, author_only, precondition, for_delete=True)
    changes = history.Changes(actor)
    changes.deleted(interaction)
    await trash.move_interaction(session, interaction.id, trash.Deletion.new(actor.user_id))
    session.expunge(interaction)
    await changes.write(session)
