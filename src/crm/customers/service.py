"""Customer use cases: business rules over typed SQL. Never commits; the request does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import func, select
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
from crm.orders.projection.models import CustomerOrderFigures
from crm.trash import queries as trash

_TIMESTAMPS = frozenset({"created_at", "updated_at", "last_order_date"})

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
    # By the order figures (crm.orders.projection): bounds inclusive, dates exclusive.
    min_total_spent: Decimal | None = None
    max_total_spent: Decimal | None = None
    has_orders: bool | None = None
    last_order_before: datetime | None = None
    last_order_after: datetime | None = None

    @property
    def by_figures(self) -> bool:
        return any(
            v is not None
            for v in (
                self.min_total_spent,
                self.max_total_spent,
                self.has_orders,
                self.last_order_before,
                self.last_order_after,
            )
        )


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
        elif value is not None and sort_by == "total_spent":
            value = Decimal(str(value))
        elif value is not None and sort_by == "total_orders":
            value = int(str(value))
    except (ValueError, ArithmeticError):
        raise ValidationFailed.field("cursor", "is not a cursor this service issued") from None
    if value is None and sort_by not in queries.NULLABLE:
        raise ValidationFailed.field("cursor", "is not a cursor this service issued")
    return value, last_id


def _cursor_of(row: Mapping[str, Any], sort_by: str, order: SortOrder) -> str:
    value = row[sort_by]
    # A cursor's value is a JSON string (or null): numbers too, so a Decimal stays exact.
    encoded = value.isoformat() if isinstance(value, datetime) else None if value is None else str(value)
    return Cursor(sort_by, order.value, encoded, str(row["id"])).encode()


_NO_FIGURES = {
    "total_orders": 0,
    "total_spent": Decimal("0.00"),
    "first_order_date": None,
    "last_order_date": None,
    "orders_synced_at": None,
}


def _figures(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """A customer's order figures from its row's columns; none (a customer the trigger has not
    seen: rows loaded around it) reads as no orders, never synced."""
    if row is None or row["total_orders"] is None:
        return dict(_NO_FIGURES)
    return {name: row[name] for name in queries.FIGURE_FIELDS}


def _list_item(row: Mapping[str, Any], figures: Mapping[str, Any] | None = None) -> dict[str, Any]:
    item = {name: row[name] for name in queries.CUSTOMER_FIELDS}
    item["primary_contact"] = {name: row["k_" + name] for name in queries.CONTACT_FIELDS} if row["k_id"] else None
    item |= _figures(row if figures is None else figures)
    return item


def _figure_values(filters: CustomerFilters) -> dict[str, Any]:
    return {
        "min_spent": filters.min_total_spent,
        "max_spent": filters.max_total_spent,
        "last_before": filters.last_order_before,
        "last_after": filters.last_order_after,
    }


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

    Without `search` or a figure filter the total is exact (from the maintained counters, or an
    index-only count for an owner). With either it is counted up to `total_cap`: above it the
    total is `CappedTotal(total_cap)`, which the answer shows as `"totalCapped": true`.
    """
    values: dict[str, Any] = {
        "status": filters.status.value if filters.status else None,
        "type": filters.type.value if filters.type else None,
        "owner_id": filters.owner_id,
        "offset": page.offset,
        **_figure_values(filters),
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
        offset=page.offset > 0,
        min_spent=filters.min_total_spent is not None,
        max_spent=filters.max_total_spent is not None,
        has_orders=filters.has_orders,
        last_before=filters.last_order_before is not None,
        last_after=filters.last_order_after is not None,
    )
    total: int
    if filters.search is None and not filters.by_figures:
        rows = await queries.list_page(connection, shape, values)
        total = int(rows[0]["total"]) if rows else await queries.list_total(connection, shape, values)
    elif filters.search is None:
        # The counters say how many customers the status/type filters keep: few, and the figures
        # are probed for each of them rather than walked along a figure's range.
        customers = None
        if (filters.status or filters.type) and not filters.owner_id:
            customers = await queries.list_total(connection, shape, values)
        rows = await queries.figures_page(connection, shape, values, page.offset, customers)
        counted = await queries.figures_count(connection, shape, values, total_cap, customers)
        total = CappedTotal(total_cap) if counted > total_cap else counted
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

    Items as the list's (customer fields, primary_contact and figures), read on the driver
    connection. The figures come from a second statement by id (crm.customers.search builds the
    tiers; a few primary-key look-ups here keep it out of them): a later snapshot by a moment.
    """
    rows = await customer_search.find(connection, query, limit)
    figures = await queries.figures_of(connection, [row["id"] for row in rows]) if rows else {}
    return [_list_item(row, figures.get(row["id"], _NO_FIGURES)) for row in rows]


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
    customer = {name: rows[0][name] for name in queries.CUSTOMER_FIELDS} | _figures(rows[0])
    contact_rows = [
        {name: row["k_" + name] for name in queries.CONTACT_FIELDS} for row in rows if row["k_id"] is not None
    ]
    customer["contacts"] = contact_rows
    customer["primary_contact"] = contact_rows[0] if contact_rows and contact_rows[0]["is_primary"] else None
    return customer


async def order_figures(session: AsyncSession, customer_id: UUID) -> dict[str, Any]:
    """The customer's order figures as a read answers them (a written customer's answer carries them)."""
    row = (
        await session.execute(
            select(*(getattr(CustomerOrderFigures, n) for n in queries.FIGURE_FIELDS)).where(
                CustomerOrderFigures.customer_id == customer_id
            )
        )
    ).first()
    return _figures(dict(row._mapping) if row is not None else None)


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
    customer = await contacts.lock_customer(session, customer_id, for_delete=True)
    if precondition is not None:
        precondition.check(customer.version)
    changes = history.Changes(actor)
    changes.deleted(customer)
    # Contacts and interactions go to the trash with it (one deletion, restored together):
    # each gets its own `deleted` entry, so a reader (or an event consumer) of a contact learns it is gone.
    deletion = trash.Deletion.new(actor.user_id)
    await trash.move_customer(session, customer.id, deletion)
    await changes.children_deleted(session, customer.id, deletion.id)
    session.expunge(customer)
    await changes.write(session)
