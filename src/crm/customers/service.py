"""Customer use cases: business rules over typed SQL. Never commits; the request does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from crm.common import db_errors
from crm.common.concurrency import Precondition
from crm.common.pagination import CappedTotal, Cursor, PageParams, SortOrder
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.customers import aggregates, queries
from crm.customers import search as customer_search
from crm.customers.models import Customer, CustomerStatus, CustomerType
from crm.customers.schemas import CustomerCreate, CustomerUpdate
from crm.errors import Conflict, NotFound, ValidationFailed
from crm.history import service as history
from crm.trash import queries as trash

_TIMESTAMPS = frozenset({"created_at", "updated_at"})

# A `search` filter's total is counted up to this many matches (an exact count would read
# every match, over millions of rows for a common fragment).
TOTAL_CAP = 10_000

_EMAIL_INDEX = "uq_customers_email_lower"


def _duplicate_email() -> Conflict:
    return Conflict("a customer with this email already exists")


@dataclass(frozen=True, slots=True)
class CustomerFilters:
    status: CustomerStatus | None = None
    type: CustomerType | None = None
    owner_id: UUID | None = None
    search: str | None = None


@dataclass(slots=True)
class CustomerView:
    """A customer with the contacts a response shows (primary only, or all)."""

    customer: Customer
    primary_contact: Contact | None
    contacts: list[Contact]


def _cursor_values(cursor: Cursor, sort_by: str, order: SortOrder) -> tuple[object, UUID]:
    """The cursor row's sort value and id, checked against the request's sort."""
    if cursor.sort_by != sort_by or cursor.order != order.value:
        raise ValidationFailed.field("cursor", f"was issued for sortBy={cursor.sort_by} sortOrder={cursor.order}")
    try:
        last_id = UUID(cursor.id)
        value: object = cursor.value
        if value is not None and sort_by in _TIMESTAMPS:
            value = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed.field("cursor", "is not a cursor this service issued") from None
    if value is None and sort_by not in queries.NULLABLE:
        raise ValidationFailed.field("cursor", "is not a cursor this service issued")
    return value, last_id


def _cursor_of(row: Mapping[str, Any], sort_by: str, order: SortOrder) -> str:
    value = row[sort_by]
    encoded = value.isoformat() if isinstance(value, datetime) else value
    return Cursor(sort_by, order.value, encoded, str(row["id"])).encode()


def _list_item(row: Mapping[str, Any]) -> dict[str, Any]:
    item = {name: row[name] for name in queries.CUSTOMER_FIELDS}
    item["primary_contact"] = {name: row["k_" + name] for name in queries.CONTACT_FIELDS} if row["k_id"] else None
    return item


async def list_customers(
    connection: asyncpg.Connection,
    filters: CustomerFilters,
    page: PageParams,
    sort_by: str,
    order: SortOrder,
    *,
    total_cap: int = TOTAL_CAP,
) -> tuple[list[dict[str, Any]], int, str | None]:
    """A page of customers (each with its primary contact), the total, and the next page's cursor.

    Without `search` the total is exact (from the maintained counters, or an index-only count
    for an owner). With `search` it is counted up to `total_cap`: above it the total is
    `CappedTotal(total_cap)`, which the answer shows as `"totalCapped": true`.
    """
    values: dict[str, Any] = {
        "status": filters.status.value if filters.status else None,
        "type": filters.type.value if filters.type else None,
        "owner_id": filters.owner_id,
        "offset": page.offset,
    }
    cursor_null = False
    if page.cursor is not None:
        values["after_value"], values["after_id"] = _cursor_values(page.cursor, sort_by, order)
        cursor_null = values["after_value"] is None
    shape = queries.ListShape(
        sort_by,
        order,
        filters.status is not None,
        filters.type is not None,
        filters.owner_id is not None,
        page.cursor is not None,
        cursor_null,
        page.limit + 1,  # one more than the page: is there a next one?
    )
    total: int
    if filters.search is None:
        rows = await queries.list_page(connection, shape, values)
        total = int(rows[0]["total"]) if rows else await queries.list_total(connection, shape, values)
    else:
        match = queries.MatchShape.of(filters.search)
        values |= queries.match_values(filters.search)
        rows = await queries.search_page(connection, shape, match, values, page.offset)
        counted = await queries.capped_count(connection, shape, match, values, total_cap)
        total = CappedTotal(total_cap) if counted > total_cap else counted
    next_cursor = _cursor_of(rows[page.limit - 1], sort_by, order) if len(rows) > page.limit else None
    return [_list_item(row) for row in rows[: page.limit]], total, next_cursor


async def search_customers(connection: asyncpg.Connection, query: str, limit: int) -> list[dict[str, Any]]:
    """Exact matches first, then prefix, then substring, typos last; see crm.customers.search.

    Items as the list's (customer fields and primary_contact), read on the driver connection.
    """
    return [_list_item(row) for row in await customer_search.find(connection, query, limit)]


async def segments(connection: asyncpg.Connection) -> dict[str, object]:
    # Read from the trigger-maintained counters: a few rows, however many customers there are.
    rows = await aggregates.segment_counts(connection)
    types = [t.value for t in CustomerType] + ["unspecified"]
    by_status = {s.value: 0 for s in CustomerStatus}
    by_type = dict.fromkeys(types, 0)
    by_both = {s.value: dict.fromkeys(types, 0) for s in CustomerStatus}
    total = 0
    for status, type_, count in rows:
        type_key = type_ or "unspecified"
        total += count
        by_status[status] += count
        by_type[type_key] += count
        by_both[status][type_key] += count
    return {"total": total, "byStatus": by_status, "byType": by_type, "byStatusAndType": by_both}


async def read_customer(connection: Any, customer_id: UUID) -> dict[str, Any]:
    """GET /api/customers/:id as plain data, read with one statement on the driver connection."""
    rows = await queries.customer_with_contacts(connection, customer_id)
    if not rows:
        raise NotFound(f"customer {customer_id} not found")
    customer = {name: rows[0][name] for name in queries.CUSTOMER_FIELDS}
    contact_rows = [
        {name: row["k_" + name] for name in queries.CONTACT_FIELDS} for row in rows if row["k_id"] is not None
    ]
    customer["contacts"] = contact_rows
    customer["primary_contact"] = contact_rows[0] if contact_rows and contact_rows[0]["is_primary"] else None
    return customer


async def _with_contacts(session: AsyncSession, customer: Customer) -> CustomerView:
    contact_list = await contacts.contacts_of(session, customer.id)
    primary = contact_list[0] if contact_list and contact_list[0].is_primary else None
    return CustomerView(customer, primary, contact_list)


def _new_customer(data: CustomerCreate, creator_id: UUID) -> dict[str, Any]:
    """The columns of a new customer: what the caller sent; its owner is the creator unless named."""
    return {**data.model_dump(exclude={"contacts", "owner_id"}), "owner_id": data.owner_id or creator_id}


async def create_customer(session: AsyncSession, data: CustomerCreate, actor: history.Actor) -> CustomerView:
    """The customer (and the contacts sent with it); its owner is the actor unless named."""
    assert actor.user_id is not None
    contacts.check_nested(data.contacts)
    customer = Customer(**_new_customer(data, actor.user_id))
    session.add(customer)
    await db_errors.flush(session, {_EMAIL_INDEX: _duplicate_email()})
    changes = history.Changes(actor)
    changes.created(customer)
    new_contacts = contacts.new_contacts_for_new_customer(customer.id, data.contacts, customer.created_at)
    if not new_contacts:
        await changes.write(session)
        # Nothing else can have contacts of a customer this transaction has not committed yet.
        return CustomerView(customer, None, [])
    session.add_all(new_contacts)
    await db_errors.flush(session, {})
    for contact in new_contacts:
        changes.created(contact)
    await changes.write(session)
    return await _with_contacts(session, customer)


async def update_customer(
    session: AsyncSession,
    customer_id: UUID,
    data: CustomerUpdate,
    actor: history.Actor,
    precondition: Precondition | None = None,
) -> CustomerView:
    customer = await contacts.lock_customer(session, customer_id)
    if precondition is not None:
        precondition.check(customer.version)
    changes_made = history.Changes(actor)
    changes_made.watch(customer)
    version = customer.version
    changes = data.changes()
    nested = data.contacts if "contacts" in changes else None
    changes.pop("contacts", None)
    if nested:
        contacts.check_nested(nested)
    for name, value in changes.items():
        setattr(customer, name, value.value if hasattr(value, "value") else value)
    await db_errors.flush(session, {_EMAIL_INDEX: _duplicate_email()})
    if nested:
        await contacts.upsert_nested(session, customer.id, nested, changes_made)
    if changes_made.changed() and customer.version == version:
        # The customer's representation includes its contacts, so its ETag must move too:
        # touching the row bumps the version, and a second writer with the old tag gets 412.
        # Only when a contact did change (an unchanged form moves nothing), and once.
        customer.updated_at = func.now()
        await session.flush()
        await session.refresh(customer, ["updated_at"])
    await changes_made.write(session)
    return await _with_contacts(session, customer)


async def delete_customer(
    session: AsyncSession, customer_id: UUID, actor: history.Actor, precondition: Precondition | None = None
) -> None:
    customer = await contacts.lock_customer(session, customer_id)
    if precondition is not None:
        precondition.check(customer.version)
    changes = history.Changes(actor)
    # Contacts and interactions go to the trash with it (one deletion, restored together):
    # each gets its own `deleted` entry, so a reader (or an event consumer) of a contact learns it is gone.
    await changes.children_deleted(session, customer.id)
    changes.deleted(customer)
    await trash.move_customer(session, customer.id, trash.Deletion.new(actor.user_id))
    session.expunge(customer)
    await changes.write(session)
