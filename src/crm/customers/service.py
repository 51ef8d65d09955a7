"""Customer use cases: business rules over typed SQL. Never commits; the request does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from crm.common import db_errors
from crm.common.concurrency import Precondition
from crm.common.pagination import Cursor, PageParams, SortOrder
from crm.common.search import Matcher
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.contacts.schemas import ContactOut
from crm.customers import aggregates
from crm.customers import search as customer_search
from crm.customers.models import Customer, CustomerStatus, CustomerType
from crm.customers.schemas import CustomerCreate, CustomerOut, CustomerUpdate
from crm.customers.search import document as _document
from crm.customers.search import search_columns as _search_columns
from crm.db import DriverStatement
from crm.errors import Conflict, NotFound, ValidationFailed

SORTABLE = {
    "created_at": Customer.created_at,
    "updated_at": Customer.updated_at,
    "first_name": Customer.first_name,
    "last_name": Customer.last_name,
    "email": Customer.email,
    "company_name": Customer.company_name,
    "status": Customer.status,
    "type": Customer.type,
}

_TIMESTAMPS = frozenset({"created_at", "updated_at"})
_NULLABLE = frozenset({"email", "company_name", "type"})

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


def _filtered(shape: ListShape, search: str | None) -> list[ColumnElement[bool]]:
    """The list's conditions, over named parameters: their values are bound at fetch."""
    where: list[ColumnElement[bool]] = []
    if shape.status:
        where.append(Customer.status == bindparam("status", type_=String))
    if shape.type:
        where.append(Customer.type == bindparam("type", type_=String))
    if shape.owner:
        where.append(Customer.owner_id == bindparam("owner_id", type_=Uuid))
    if search is not None:
        matcher = Matcher(search)
        where += [matcher.prefilter(_document()), matcher.where(*_search_columns())]
    return where


def _filter_values(filters: CustomerFilters) -> dict[str, Any]:
    return {
        "status": filters.status.value if filters.status else None,
        "type": filters.type.value if filters.type else None,
        "owner_id": filters.owner_id,
    }


def _total(shape: ListShape, search: str | None, where: list[ColumnElement[bool]]) -> Select[int]:
    if not shape.owner and search is None:
        # Status/type filters only: the maintained counters answer without counting rows.
        return aggregates.count_statement(shape.status, shape.type)
    return select(func.count()).select_from(Customer).where(*where)


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
    if value is None and sort_by not in _NULLABLE:
        raise ValidationFailed.field("cursor", "is not a cursor this service issued")
    return value, last_id


def _after(sort_by: str, order: SortOrder, null_value: bool) -> ColumnElement[bool]:
    """Rows strictly after the cursor's row (parameters after_value, after_id) in (sort column, id)
    order, NULLs placed as PostgreSQL does."""
    column = SORTABLE[sort_by]
    value = bindparam("after_value", type_=column.type)
    last_id = bindparam("after_id", type_=Uuid)
    ascending = order is SortOrder.ASC
    if null_value:
        # NULLs sort last ascending, first descending.
        tail = column.is_(None) & (Customer.id > last_id if ascending else Customer.id < last_id)
        return tail if ascending else or_(tail, column.is_not(None))
    if sort_by not in _NULLABLE:
        # A row comparison walks the (column, id) index directly.
        pair = tuple_(column, Customer.id)
        return pair > tuple_(value, last_id) if ascending else pair < tuple_(value, last_id)
    same = (column == value) & (Customer.id > last_id if ascending else Customer.id < last_id)
    beyond = or_(column > value, column.is_(None)) if ascending else column < value
    return or_(beyond, same)


def _cursor_of(row: Mapping[str, Any], sort_by: str, order: SortOrder) -> str:
    value = row[sort_by]
    encoded = value.isoformat() if isinstance(value, datetime) else value
    return Cursor(sort_by, order.value, encoded, str(row["id"])).encode()


_CUSTOMER_FIELDS = tuple(CustomerOut.model_fields)
_CONTACT_FIELDS = tuple(ContactOut.model_fields)
# A list row: the customer, its primary contact (k_*), and the total of the whole list.
_LIST_COLUMNS = (
    *(getattr(Customer, name) for name in _CUSTOMER_FIELDS),
    *(getattr(Contact, name).label("k_" + name) for name in _CONTACT_FIELDS),
)


@dataclass(frozen=True, slots=True)
class ListShape:
    """What decides the list statement's text; the values are parameters."""

    sort_by: str
    order: SortOrder
    status: bool
    type: bool
    owner: bool
    cursor: bool
    cursor_null: bool
    # In the text, not a parameter: with an unknown LIMIT a generic plan expects a tenth of the
    # table on the page and joins it by hash; a known one keeps the nested index look-ups.
    rows: int


def _list_statement(shape: ListShape, search: str | None) -> Select[*tuple[Any, ...]]:
    where = _filtered(shape, search)
    total = _total(shape, search, where)
    column = SORTABLE[shape.sort_by]
    # Ties broken by id in the same direction, so pages never repeat or skip a row.
    ascending = shape.order is SortOrder.ASC
    ordering = (column.asc(), Customer.id.asc()) if ascending else (column.desc(), Customer.id.desc())
    if shape.cursor:
        where.append(_after(shape.sort_by, shape.order, shape.cursor_null))
    # The page's ids first (an index-only walk past a deep offset), then their rows and primary
    # contacts: joined before the offset, every skipped row would cost a contact look-up.
    on_page = (
        select(Customer.id)
        .where(*where)
        .order_by(*ordering)
        .offset(bindparam("offset", type_=Integer))
        .limit(literal_column(str(int(shape.rows))))
        .subquery()
    )
    return (
        select(*_LIST_COLUMNS, total.scalar_subquery().label("total"))
        .select_from(Customer)
        .join(on_page, on_page.c.id == Customer.id)
        .outerjoin(Contact, (Contact.customer_id == Customer.id) & Contact.is_primary)
        .order_by(*ordering)
    )


@lru_cache(maxsize=256)
def _list_driver_statement(shape: ListShape) -> DriverStatement:
    return DriverStatement.of(_list_statement(shape, None))


def _list_item(row: Mapping[str, Any]) -> dict[str, Any]:
    item = {name: row[name] for name in _CUSTOMER_FIELDS}
    item["primary_contact"] = {name: row["k_" + name] for name in _CONTACT_FIELDS} if row["k_id"] else None
    return item


async def list_customers(
    connection: asyncpg.Connection, filters: CustomerFilters, page: PageParams, sort_by: str, order: SortOrder
) -> tuple[list[dict[str, Any]], int, str | None]:
    """A page of customers (each with its primary contact), the total, and the next page's cursor.

    One statement: the page, the primary contacts and the total come from one snapshot in
    one round trip (the list is the page staff reload all day). Its text depends only on
    the ListShape, so it is built and compiled once per shape; a search filter carries its
    own terms and is compiled per request.
    """
    values = {**_filter_values(filters), "offset": page.offset}
    cursor_null = False
    if page.cursor is not None:
        values["after_value"], values["after_id"] = _cursor_values(page.cursor, sort_by, order)
        cursor_null = values["after_value"] is None
    shape = ListShape(
        sort_by,
        order,
        filters.status is not None,
        filters.type is not None,
        filters.owner_id is not None,
        page.cursor is not None,
        cursor_null,
        page.limit + 1,  # one more than the page: is there a next one?
    )
    if filters.search is None:
        statement = _list_driver_statement(shape)
    else:
        statement = DriverStatement.of(_list_statement(shape, filters.search))
    rows = await statement.fetch(connection, values)
    if rows:
        count = int(rows[0]["total"])
    else:  # past the last page no row carries the total: ask for it alone
        total = _total(shape, filters.search, _filtered(shape, filters.search))
        count = int((await DriverStatement.of(total).fetch(connection, values))[0][0] or 0)
    next_cursor = _cursor_of(rows[page.limit - 1], sort_by, order) if len(rows) > page.limit else None
    return [_list_item(row) for row in rows[: page.limit]], count, next_cursor


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


# The customer and its contacts (primary first, then newest) in one statement, for the
# hottest read of the service; columns as in CustomerOut / ContactOut.
_CUSTOMER_BY_ID = """
SELECT c.id, c.first_name, c.last_name, c.email, c.phone, c.company_name, c.tax_id, c.address, c.city,
       c.postal_code, c.country, c.status, c.type, c.notes, c.owner_id, c.version, c.created_at, c.updated_at,
       k.id AS k_id, k.customer_id AS k_customer_id, k.first_name AS k_first_name, k.last_name AS k_last_name,
       k.position AS k_position, k.email AS k_email, k.phone AS k_phone, k.is_primary AS k_is_primary,
       k.version AS k_version, k.created_at AS k_created_at, k.updated_at AS k_updated_at
FROM customers c LEFT JOIN contacts k ON k.customer_id = c.id
WHERE c.id = $1
ORDER BY k.is_primary DESC, k.created_at DESC, k.id DESC
"""


async def read_customer(connection: Any, customer_id: UUID) -> dict[str, Any]:
    """GET /api/customers/:id as plain data, read with one statement on the driver connection."""
    rows = await connection.fetch(_CUSTOMER_BY_ID, customer_id)
    if not rows:
        raise NotFound(f"customer {customer_id} not found")
    customer = {name: rows[0][name] for name in _CUSTOMER_FIELDS}
    contact_rows = [{name: row["k_" + name] for name in _CONTACT_FIELDS} for row in rows if row["k_id"] is not None]
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


async def create_customer(session: AsyncSession, data: CustomerCreate, creator_id: UUID) -> CustomerView:
    contacts.check_nested(data.contacts)
    customer = Customer(**_new_customer(data, creator_id))
    session.add(customer)
    await db_errors.flush(session, {_EMAIL_INDEX: _duplicate_email()})
    new_contacts = contacts.new_contacts_for_new_customer(customer.id, data.contacts, customer.created_at)
    if not new_contacts:
        # Nothing else can have contacts of a customer this transaction has not committed yet.
        return CustomerView(customer, None, [])
    session.add_all(new_contacts)
    await db_errors.flush(session, {})
    return await _with_contacts(session, customer)


# INSERT ... RETURNING for a customer sent without contacts: one statement, so in autocommit it
# is the request's whole transaction (the segment counters' trigger runs inside it).
_INSERT_CUSTOMER = DriverStatement.of(
    insert(Customer)
    .values({name: bindparam(name) for name in CustomerCreate.model_fields if name != "contacts"})
    .returning(*(getattr(Customer, name) for name in _CUSTOMER_FIELDS))
)


async def insert_customer(connection: asyncpg.Connection, data: CustomerCreate, creator_id: UUID) -> dict[str, Any]:
    """Create a customer without contacts on a driver connection in autocommit; the new row
    as CustomerOut's fields. A taken email is the same Conflict as create_customer's."""
    if data.contacts:
        raise ValueError("a customer with contacts is created by create_customer, in one transaction")
    try:
        rows = await _INSERT_CUSTOMER.fetch(connection, _new_customer(data, creator_id))
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name == _EMAIL_INDEX:
            raise _duplicate_email() from None
        raise
    return dict(rows[0])


async def update_customer(
    session: AsyncSession, customer_id: UUID, data: CustomerUpdate, precondition: Precondition | None = None
) -> CustomerView:
    customer = await contacts.lock_customer(session, customer_id)
    if precondition is not None:
        precondition.check(customer.version)
    changes = data.changes()
    nested = data.contacts if "contacts" in changes else None
    changes.pop("contacts", None)
    if nested:
        contacts.check_nested(nested)
    for name, value in changes.items():
        setattr(customer, name, value.value if hasattr(value, "value") else value)
    await db_errors.flush(session, {_EMAIL_INDEX: _duplicate_email()})
    if nested:
        await contacts.upsert_nested(session, customer.id, nested)
        # The customer's representation includes its contacts, so its ETag must move too:
        # touching the row bumps the version, and a second writer with the old tag gets 412.
        customer.updated_at = func.now()
        await session.flush()
        await session.refresh(customer, ["updated_at"])
    return await _with_contacts(session, customer)


async def delete_customer(session: AsyncSession, customer_id: UUID, precondition: Precondition | None = None) -> None:
    customer = await contacts.lock_customer(session, customer_id)
    if precondition is not None:
        precondition.check(customer.version)
    # Contacts and interactions go with it through ON DELETE CASCADE.
    await session.delete(customer)
    await session.flush()
