"""The customers' read statements: a customer by id, the list's pages and its totals.

Every statement here is a `DriverStatement` (crm.db.reads) run on the read pool's asyncpg
connection, built once per shape over named parameters, so a request only binds values. That
pool plans generically (plan_cache_mode=force_generic_plan), and a generic plan prices
`LIMIT $n` as a tenth of its input, so every LIMIT is in the statement's text. The search's
relevance tiers are crm.customers.search's; the list's `search` filter borrows its match
conditions from there, so "filters like /search" stays one definition.

How a list page stays cheap at a million customers:

- Without `search`: the page's ids come from one walk of the sort's `(column, id)` index,
  which also carries the filter columns (status, type, owner_id), so the rows a filter skips
  are never read from the table; then only the page's rows and primary contacts are read. The
  total comes from the trigger-kept counters (status/type), or, with an owner, from an
  index-only count of that owner's `(owner_id, created_at, id)` range.
- With `search`: first the sort's order is walked for a window of the filtered rows and the
  matches among them are kept (`_window_ids`): a fragment that a fraction d of them contain
  fills a page after about rows/d of them, whatever the order. A full page is exactly the
  right one (the window is a prefix of the order). Otherwise the fragment is rare there, so
  the trigram index's candidates are few: all of them are collected and sorted
  (`_rare_ids`). The total counts matches up to a cap (`capped_count`): exact below it,
  "at least the cap" at it.

The order figures (crm.orders.projection: a `customer_order_figures` row per customer) come with
the customer in the same statement. A sort by a figure walks that table's `(column,
customer_id)` index and joins each walked row's customer (for the filters); a figure filter
joins the figures row of each customer walked. The total of a list filtered by a figure is
counted up to the cap like a `search` total: an exact count would read every match (half the
customers for `hasOrders=false`), and no counter can answer a range of amounts.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Numeric,
    Select,
    String,
    Subquery,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Uuid

from crm.common.pagination import SortOrder
from crm.contacts.models import Contact
from crm.contacts.schemas import ContactOut
from crm.customers import aggregates
from crm.customers import search as customer_search
from crm.customers.models import Customer
from crm.customers.schemas import CustomerOut
from crm.db.reads import DriverStatement
from crm.orders.projection.models import CustomerOrderFigures as Figures

SORTABLE = {
    "created_at": Customer.created_at,
    "updated_at": Customer.updated_at,
    "first_name": Customer.first_name,
    "last_name": Customer.last_name,
    "email": Customer.email,
    "company_name": Customer.company_name,
    "status": Customer.status,
    "type": Customer.type,
    "total_spent": Figures.total_spent,
    "total_orders": Figures.total_orders,
    "last_order_date": Figures.last_order_date,
}
# Sorts by a figure: walked in the figures table's index, keyed by its customer_id.
FIGURE_SORTS = frozenset({"total_spent", "total_orders", "last_order_date"})
NULLABLE = frozenset({"email", "company_name", "type", "last_order_date"})
# Nullable sorts whose NULLs come first ascending (and last descending), as their index holds
# them: a customer who never ordered is "longest since an order", and "most recent first" ends
# with them. The others keep PostgreSQL's default (NULLs last ascending, first descending).
NULLS_LOW = frozenset({"last_order_date"})
FIGURE_FIELDS = ("total_orders", "total_spent", "first_order_date", "last_order_date", "orders_synced_at")

CUSTOMER_FIELDS = tuple(CustomerOut.model_fields)
CONTACT_FIELDS = tuple(ContactOut.model_fields)


def _rows(count: int) -> ColumnElement[Any]:
    """A LIMIT in the statement's text (see the module docstring)."""
    return literal_column(str(int(count)))


# --- a customer by id ---------------------------------------------------------------------

# The customer, its contacts (primary first, then newest) and its order figures in one
# statement, for the hottest read of the service; one row per contact (or one with k_* NULL
# when it has none).
_CUSTOMER_BY_ID = DriverStatement.of(
    select(
        *(getattr(Customer, name) for name in CUSTOMER_FIELDS),
        *(getattr(Contact, name).label("k_" + name) for name in CONTACT_FIELDS),
        *(getattr(Figures, name) for name in FIGURE_FIELDS),
    )
    .select_from(Customer)
    # The figures first: joined after the contacts, they were looked up once per contact row.
    .outerjoin(Figures, Figures.customer_id == Customer.id)
    .outerjoin(Contact, Contact.customer_id == Customer.id)
    .where(Customer.id == bindparam("id", type_=Uuid))
    .order_by(Contact.is_primary.desc(), Contact.created_at.desc(), Contact.id.desc())
)


async def customer_with_contacts(connection: asyncpg.Connection, customer_id: Any) -> list[asyncpg.Record]:
    """The customer's fields on every row, its contacts as k_* (no rows: no such customer)."""
    return await _CUSTOMER_BY_ID.fetch(connection, {"id": customer_id})


# --- the list -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListShape:
    """What decides a list statement's text; the values are parameters (`status`, `type`,
    `owner_id`, `offset`, `after_value`/`after_id` with a cursor, and the figure filters'
    `min_spent`, `max_spent`, `last_before`, `last_after`)."""

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
    # Whether the statement skips rows (`offset`). Not for a first or a cursor page: a generic plan
    # prices an unknown OFFSET as a tenth of the rows, and for a page sorted by a figure (a walk
    # joining two tables) that alone made it choose a parallel plan, 10-20 ms of start-up.
    offset: bool = True
    min_spent: bool = False
    max_spent: bool = False
    has_orders: bool | None = None
    last_before: bool = False
    last_after: bool = False

    @property
    def figure_filters(self) -> bool:
        return self.min_spent or self.max_spent or self.has_orders is not None or self.last_before or self.last_after

    @property
    def figures(self) -> bool:
        """Whether the walk needs the figures table (a figure sort or a figure filter)."""
        return self.sort_by in FIGURE_SORTS or self.figure_filters


@dataclass(frozen=True, slots=True)
class MatchShape:
    """What decides the text of a `search` filter's conditions (see crm.customers.search).

    `initial`: a 1-character search (the list's search box at its first keystroke) matches the
    start of a field (customer_search.starts_with_initial), not any substring of one.
    """

    phone: bool
    spaced: bool
    caseless: bool
    initial: bool = False

    @classmethod
    def of(cls, query: str) -> MatchShape:
        if len(query) == 1:
            return cls(phone=False, spaced=False, caseless=False, initial=True)
        return cls(*customer_search.substring_shape(query))


def match_values(query: str) -> dict[str, Any]:
    """The parameters of a `search` filter's conditions."""
    if len(query) == 1:
        return {"exact": query}
    return customer_search.substring_params(query, [])


def _filters(shape: ListShape, entity: Any = Customer) -> list[ColumnElement[bool]]:
    return _customer_filters(shape, entity) + _figure_filters(shape)


def _customer_filters(shape: ListShape, entity: Any = Customer) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if shape.status:
        where.append(entity.status == bindparam("status", type_=String))
    if shape.type:
        where.append(entity.type == bindparam("type", type_=String))
    if shape.owner:
        where.append(entity.owner_id == bindparam("owner_id", type_=Uuid))
    return where


def _figure_filters(shape: ListShape) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if shape.min_spent:
        where.append(Figures.total_spent >= bindparam("min_spent", type_=Numeric(14, 2)))
    if shape.max_spent:
        where.append(Figures.total_spent <= bindparam("max_spent", type_=Numeric(14, 2)))
    if shape.has_orders is not None:
        where.append(Figures.total_orders > 0 if shape.has_orders else Figures.total_orders == 0)
    if shape.last_before:
        where.append(Figures.last_order_date < bindparam("last_before", type_=DateTime(timezone=True)))
    if shape.last_after:
        where.append(Figures.last_order_date > bindparam("last_after", type_=DateTime(timezone=True)))
    return where


def _key(shape: ListShape) -> Any:
    """The tie-breaking id of the sort: the figures table's own for a figure sort (its index's)."""
    return Figures.customer_id if shape.sort_by in FIGURE_SORTS else Customer.id


def _nulls_first(shape: ListShape) -> bool:
    ascending = shape.order is SortOrder.ASC
    return ascending if shape.sort_by in NULLS_LOW else not ascending


def _from(statement: Select[*tuple[Any, ...]], shape: ListShape) -> Select[*tuple[Any, ...]]:
    """The customers, joined to their figures when the sort or a filter needs them."""
    statement = statement.select_from(Customer)
    if shape.figures:
        statement = statement.join(Figures, Figures.customer_id == Customer.id)
    return statement


def _after(shape: ListShape) -> ColumnElement[bool]:
    """Rows strictly after the cursor's row (parameters after_value, after_id) in (sort column, id)
    order, NULLs placed as the sort places them (see NULLS_LOW)."""
    return _after_of(shape, SORTABLE[shape.sort_by], _key(shape))


def _after_of(shape: ListShape, column: Any, key: Any) -> ColumnElement[bool]:
    value = bindparam("after_value", type_=SORTABLE[shape.sort_by].type)
    last_id = bindparam("after_id", type_=Uuid)
    ascending = shape.order is SortOrder.ASC
    later_id = key > last_id if ascending else key < last_id
    nulls_first = _nulls_first(shape)
    if shape.cursor_null:
        tail = column.is_(None) & later_id
        return or_(tail, column.is_not(None)) if nulls_first else tail
    if shape.sort_by not in NULLABLE:
        # A row comparison walks the (column, id) index directly.
        pair = tuple_(column, key)
        return pair > tuple_(value, last_id) if ascending else pair < tuple_(value, last_id)
    same = (column == value) & later_id
    beyond = column > value if ascending else column < value
    if not nulls_first:
        beyond = or_(beyond, column.is_(None))
    return or_(beyond, same)


def _ordering(shape: ListShape, column: Any = None, key: Any = None) -> tuple[Any, Any]:
    # Ties broken by id in the same direction, so pages never repeat or skip a row.
    column = SORTABLE[shape.sort_by] if column is None else column
    key = _key(shape) if key is None else key
    if shape.order is SortOrder.ASC:
        first, second = column.asc(), key.asc()
    else:
        first, second = column.desc(), key.desc()
    if shape.sort_by in NULLS_LOW:
        first = first.nulls_first() if _nulls_first(shape) else first.nulls_last()
    return first, second


def _walked(shape: ListShape) -> Select[Any]:
    """The filtered rows' ids in the list's order, from the cursor on: an index-only walk."""
    where = _filters(shape)
    if shape.cursor:
        where.append(_after(shape))
    return _from(select(_key(shape).label("id")), shape).where(*where).order_by(*_ordering(shape))


def _offset() -> Any:
    return bindparam("offset", type_=Integer)


def _counted_total(shape: ListShape) -> Select[Any]:
    if not shape.owner:
        # Status/type filters only: the maintained counters answer without counting rows.
        return aggregates.count_statement(shape.status, shape.type)
    return select(func.count()).select_from(Customer).where(*_filters(shape))


def _page(ids: Subquery, shape: ListShape, *extra: Any) -> Select[Any]:
    """The rows of the page whose ids `ids` holds, with their primary contacts and figures, in the
    list's order: joined after the page is chosen, so a skipped row never costs a contact look-up."""
    return (
        select(
            *(getattr(Customer, name) for name in CUSTOMER_FIELDS),
            *(getattr(Contact, name).label("k_" + name) for name in CONTACT_FIELDS),
            *(getattr(Figures, name) for name in FIGURE_FIELDS),
            *extra,
        )
        .select_from(Customer)
        .join(ids, ids.c.id == Customer.id)
        .outerjoin(Contact, (Contact.customer_id == Customer.id) & Contact.is_primary)
        .outerjoin(Figures, Figures.customer_id == Customer.id)
        .order_by(*_ordering(shape))
    )


@functools.lru_cache(maxsize=256)
def _list_statement(shape: ListShape) -> DriverStatement:
    walked = _walked(shape)
    on_page = (walked.offset(_offset()) if shape.offset else walked).limit(_rows(shape.rows)).subquery()
    if shape.figure_filters:
        # Counted apart (figures_count): the counters do not know the figures.
        return DriverStatement.of(_page(on_page, shape))
    return DriverStatement.of(_page(on_page, shape, _counted_total(shape).scalar_subquery().label("total")))


async def list_page(connection: asyncpg.Connection, shape: ListShape, values: dict[str, Any]) -> list[asyncpg.Record]:
    """A page without `search` or a figure filter; every row also carries the list's exact `total`.

    One statement: the page, the primary contacts and the total come from one snapshot in
    one round trip (the list is the page staff reload all day).
    """
    return await _list_statement(shape).fetch(connection, values)


@functools.lru_cache(maxsize=64)
def _total_statement(shape: ListShape) -> DriverStatement:
    return DriverStatement.of(_counted_total(shape))


async def list_total(connection: asyncpg.Connection, shape: ListShape, values: dict[str, Any]) -> int:
    """The exact total of a list without `search` (past its last page, where no row carries it)."""
    rows = await _total_statement(shape).fetch(connection, values)
    return int(rows[0][0] or 0)


# --- the list with a figure filter ---------------------------------------------------------
#
# As the `search` filter's pages (below), for the same reason: a generic plan cannot know whether
# `minTotalSpent=50000` keeps half the customers or five of them. The sort's order is walked for
# a window of rows and the figure filters applied to those (a common filter fills the page
# there); otherwise the filter is rare, and the figures index's range holds few rows: they are
# collected and sorted.


def _unfigured(shape: ListShape) -> ListShape:
    return dataclasses.replace(
        shape, min_spent=False, max_spent=False, has_orders=None, last_before=False, last_after=False
    )


def _figure_columns(shape: ListShape) -> set[str]:
    """The figure columns the shape's figure filters compare."""
    columns = set()
    if shape.min_spent or shape.max_spent:
        columns.add("total_spent")
    if shape.last_before or shape.last_after:
        columns.add("last_order_date")
    if shape.has_orders is not None:
        columns.add("total_orders")
    return columns


def _driving(shape: ListShape) -> Any:
    """The figure column whose index range holds a figure-filtered list's rows: walked in its
    order (ORDER BY it), a statement reads that range and stops where it has enough, instead of
    merging every customer with every figures row (what a generic plan does otherwise)."""
    if shape.min_spent or shape.max_spent:
        return Figures.total_spent
    if shape.last_before or shape.last_after:
        return Figures.last_order_date
    return Figures.total_orders


@functools.lru_cache(maxsize=256)
def _figures_window(shape: ListShape, window: int) -> DriverStatement:
    """The page among the first `window` rows of the list's order (the other filters and the
    cursor applied in the walk), the figure filters applied to them: each walked customer's
    figures probed in the covering index (a LATERAL with OFFSET 0, so never a hash of the
    figure's whole range against the window)."""
    plain = _unfigured(shape)
    walked = (
        _walked(plain).add_columns(SORTABLE[shape.sort_by].label("sort_value")).limit(_rows(window)).subquery("walked")
    )
    kept = (
        select(literal(1).label("kept"))
        .select_from(Figures)
        .where(Figures.customer_id == walked.c.id, *_figure_filters(shape))
        .offset(literal_column("0"))
        .lateral("kept")
    )
    ids = (
        select(walked.c.id)
        .select_from(walked)
        .join(kept, true())
        .order_by(*_ordering(shape, walked.c.sort_value, walked.c.id))
        .offset(_offset())
        .limit(_rows(shape.rows))
        .subquery("on_page")
    )
    return DriverStatement.of(_page(ids, shape))


def _in_range(shape: ListShape, *columns: Any) -> Select[*tuple[Any, ...]]:
    """The figures rows the figure filters keep, from the driving column's index range, each with
    its customer's `columns` (the customer filters applied) by a primary-key probe.

    The customer side is a LATERAL subquery with OFFSET 0, which PostgreSQL does not flatten into
    the join: a generic plan, taking a range to hold a third of the rows, would otherwise hash
    the whole customers table against it (360 ms at 200k customers for five matches)."""
    customer = (
        select(Customer.id, *columns)
        .where(Customer.id == Figures.customer_id, *_customer_filters(shape))
        .offset(literal_column("0"))
        .lateral("customer")
    )
    return select(customer).select_from(Figures).join(customer, true()).where(*_figure_filters(shape))


@functools.lru_cache(maxsize=256)
def _figures_rare(shape: ListShape) -> DriverStatement:
    """The page among every row the filters keep, collected first (MATERIALIZED: from the figures
    index's range, not by walking the sort's index), then sorted."""
    figure_sort = shape.sort_by in FIGURE_SORTS
    ranged = _in_range(shape, *(() if figure_sort else (SORTABLE[shape.sort_by].label("sort_value"),)))
    if figure_sort:
        ranged = ranged.add_columns(SORTABLE[shape.sort_by].label("sort_value"))
    candidates = ranged.order_by(_driving(shape)).cte("candidates").prefix_with("MATERIALIZED")
    # The cursor on the collected rows (their sort value and id), not inside the range walk.
    where = [_after_of(shape, candidates.c.sort_value, candidates.c.id)] if shape.cursor else []
    ids = (
        select(candidates.c.id)
        .where(*where)
        .order_by(*_ordering(shape, candidates.c.sort_value, candidates.c.id))
        .offset(_offset())
        .limit(_rows(shape.rows))
        .subquery("on_page")
    )
    return DriverStatement.of(_page(ids, shape))


# Customers the status/type filters keep, at most, for a figure-filtered page and count to be
# walked from the customers' side (probing each one's figures) instead of along a figure's range.
SMALL_SIDE = 20_000


def _walk_size(customers: int) -> int:
    # A power of two: the size is in the statement's text, so few distinct statements are cached.
    return 1 << max(10, customers.bit_length())


async def figures_page(
    connection: asyncpg.Connection, shape: ListShape, values: dict[str, Any], offset: int, customers: int | None
) -> list[asyncpg.Record]:
    """A page with a figure filter and no `search` (several statements, as search_page).
    `customers`: how many customers the other filters keep, when the counters know (status/type)."""
    if _figure_columns(shape) == {shape.sort_by}:
        # Sorted by the filtered figure: the walk of its index starts at the bound, no window needed.
        return await list_page(connection, shape, values)
    for window in customer_search.windows(shape.rows + offset):
        rows = await _figures_window(shape, window).fetch(connection, values)
        if len(rows) == shape.rows:
            return rows
        if not rows and offset == 0:
            break
    if customers is not None and customers <= SMALL_SIDE:
        # Few customers pass the other filters (status=pending): all of them are walked.
        return await _figures_window(shape, _walk_size(customers)).fetch(connection, values)
    return await _figures_rare(shape).fetch(connection, values)


@functools.lru_cache(maxsize=256)
def _capped_from_customers(shape: ListShape, cap: int) -> DriverStatement:
    kept = (
        select(literal(1).label("kept"))
        .select_from(Figures)
        .where(Figures.customer_id == Customer.id, *_figure_filters(shape))
        .offset(literal_column("0"))
        .lateral("kept")
    )
    found = (
        select(literal(1))
        .select_from(Customer)
        .join(kept, true())
        .where(*_customer_filters(shape))
        .limit(_rows(cap + 1))
        .subquery()
    )
    return DriverStatement.of(select(func.count()).select_from(found))


async def figures_count(
    connection: asyncpg.Connection, shape: ListShape, values: dict[str, Any], cap: int, customers: int | None
) -> int:
    """A figure-filtered list's capped count: from the customers' side when few pass the other
    filters, else along the driving figure's range (capped_count)."""
    if customers is not None and customers <= SMALL_SIDE:
        rows = await _capped_from_customers(shape, cap).fetch(connection, values)
        return int(rows[0][0])
    return await capped_count(connection, shape, None, values, cap)


# --- the list with `search` -----------------------------------------------------------------


def _matches(match: MatchShape, entity: Any = Customer) -> ColumnElement[bool]:
    if match.initial:
        return customer_search.starts_with_initial(entity)
    return customer_search.matches(entity, match.phone, match.spaced, match.caseless)


def _prefilter(match: MatchShape) -> ColumnElement[bool]:
    """The trigram index's condition for a search's rows; none for an initial, whose
    `_matches` is already made of index ranges."""
    if match.initial:
        return true()
    return customer_search.prefilter(match.phone)


@functools.lru_cache(maxsize=256)
def _window_ids(shape: ListShape, match: MatchShape, window: int) -> DriverStatement:
    """The page among the first `window` filtered rows in the list's order (from the cursor on)."""
    walked = _walked(shape).limit(_rows(window)).subquery("walked")
    ids = (
        _from(select(_key(shape).label("id")), shape)
        .join(walked, walked.c.id == Customer.id)
        .where(_matches(match))
        .order_by(*_ordering(shape))
        .offset(_offset())
        .limit(_rows(shape.rows))
        .subquery("on_page")
    )
    return DriverStatement.of(_page(ids, shape))


@functools.lru_cache(maxsize=256)
def _rare_ids(shape: ListShape, match: MatchShape) -> DriverStatement:
    """The page among every trigram candidate, collected first (MATERIALIZED keeps the planner
    from walking the sort's index instead), then sorted."""
    where = [*_filters(shape), _prefilter(match), _matches(match)]
    if shape.cursor:
        where.append(_after(shape))
    candidates = (
        _from(select(Customer.id, SORTABLE[shape.sort_by].label("sort_value")), shape)
        .where(*where)
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    ids = (
        select(candidates.c.id)
        .order_by(*_ordering(shape, candidates.c.sort_value, candidates.c.id))
        .offset(_offset())
        .limit(_rows(shape.rows))
        .subquery("on_page")
    )
    return DriverStatement.of(_page(ids, shape))


async def search_page(
    connection: asyncpg.Connection, shape: ListShape, match: MatchShape, values: dict[str, Any], offset: int
) -> list[asyncpg.Record]:
    """A page with `search` (values: the list's and match_values'). Several statements, each
    its own snapshot, as under a READ COMMITTED session."""
    for window in customer_search.windows(shape.rows + offset):
        rows = await _window_ids(shape, match, window).fetch(connection, values)
        if len(rows) == shape.rows:
            return rows
        if not rows and offset == 0:
            break  # nothing at all among the first rows: rare, go to the index at once
    return await _rare_ids(shape, match).fetch(connection, values)


@functools.lru_cache(maxsize=256)
def _capped_count(shape: ListShape, match: MatchShape | None, cap: int) -> DriverStatement:
    if match is None and shape.figure_filters:
        # Along the driving figure's index range, stopping at the cap (see _in_range).
        found = _in_range(shape).order_by(_driving(shape)).limit(_rows(cap + 1)).subquery()
        return DriverStatement.of(select(func.count()).select_from(found))
    where = _filters(shape)
    if match is not None:
        where += [_prefilter(match), _matches(match)]
    found = _from(select(literal(1)), shape).where(*where).limit(_rows(cap + 1)).subquery()
    return DriverStatement.of(select(func.count()).select_from(found))


async def capped_count(
    connection: asyncpg.Connection, shape: ListShape, match: MatchShape | None, values: dict[str, Any], cap: int
) -> int:
    """How many rows the filters (and the search, if any) match, counting no further than cap + 1
    (so a result above `cap` means "more than the cap")."""
    rows = await _capped_count(shape, match, cap).fetch(connection, values)
    return int(rows[0][0])


# --- figures of customers found by search -------------------------------------------------

_FIGURES_OF = DriverStatement.of(
    select(Figures.customer_id, *(getattr(Figures, name) for name in FIGURE_FIELDS)).where(
        Figures.customer_id == func.any(bindparam("ids", type_=ARRAY(Uuid)))
    )
)


async def figures_of(connection: asyncpg.Connection, customer_ids: list[Any]) -> dict[Any, asyncpg.Record]:
    """The figures rows of these customers, by id (search's answer carries them)."""
    rows = await _FIGURES_OF.fetch(connection, {"ids": customer_ids})
    return {row["customer_id"]: row for row in rows}
