"""`/api/customers`: each endpoint declared once (see crm.api.endpoint)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.concurrency import etag, parse_if_match
from crm.common.openapi import ERRORS_READ, ERRORS_WRITE
from crm.common.pagination import Pagination, SortOrder
from crm.common.params import CursorPageQuery, IdempotencyKey, IfMatch, SearchLimit, SortedQuery
from crm.common.responses import json_response
from crm.common.search import normalize_query
from crm.common.types import SearchText
from crm.contacts.schemas import ContactOut
from crm.customers import service
from crm.customers.models import CustomerStatus, CustomerType
from crm.customers.schemas import (
    CustomerCreate,
    CustomerDetail,
    CustomerList,
    CustomerListItem,
    CustomerOut,
    CustomerUpdate,
    Segments,
)
from crm.errors import ValidationFailed
from crm.history import service as history
from crm.idempotency import service as idempotency

routes = Routes("/api/customers", tag="customers")

CustomerSortBy = Literal[
    "created_at",
    "updated_at",
    "first_name",
    "last_name",
    "email",
    "company_name",
    "status",
    "type",
    "total_spent",
    "total_orders",
    "last_order_date",
]

_AMOUNT = Annotated[Decimal | None, Field(ge=0, max_digits=14, decimal_places=2)]
_AMOUNT_HELP = "total_spent {} this amount (such as 250 or 99.90); a customer without orders has spent 0.00"
_MOMENT_HELP = "ISO 8601 date or date-time (UTC unless an offset is given); customers without orders never match"


def _moment(value: str | None, field: str, *, after: bool) -> datetime | None:
    """`lastOrderBefore` / `lastOrderAfter` as the moment compared with: strictly before the value
    (a date: before that day starts) or strictly after it (a date: after that day ends)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time.max if after else time.min, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed.field(field, "must be an ISO 8601 date or date-time") from None


class CustomerPath(BaseModel):
    customer_id: UUID


class ListQuery(CursorPageQuery, SortedQuery):
    status: CustomerStatus | None = None
    type: CustomerType | None = None
    owner_id: UUID | None = Field(default=None, alias="ownerId")
    search: Annotated[
        SearchText | None,
        Field(
            description=(
                "filters like /search (substring, any searched field); a single character matches "
                "the start of a first or last name, email, company name or tax id; blank: no filter"
            )
        ),
    ] = None
    sort_by: CustomerSortBy = Field(
        default="created_at",
        alias="sortBy",
        description="total_spent, total_orders and last_order_date sort by the order figures; "
        "last_order_date puts customers without orders first ascending, last descending",
    )
    min_total_spent: _AMOUNT = Field(default=None, alias="minTotalSpent", description=_AMOUNT_HELP.format("at least"))
    max_total_spent: _AMOUNT = Field(default=None, alias="maxTotalSpent", description=_AMOUNT_HELP.format("at most"))
    has_orders: Annotated[
        bool | None, Field(alias="hasOrders", description="true: at least one counted order; false: none")
    ] = None
    last_order_before: Annotated[
        str | None,
        Field(
            alias="lastOrderBefore",
            max_length=64,
            description=_MOMENT_HELP + "; the last order strictly before it (a date: before that day)",
        ),
    ] = None
    last_order_after: Annotated[
        str | None,
        Field(
            alias="lastOrderAfter",
            max_length=64,
            description=_MOMENT_HELP + "; the last order strictly after it (a date: after that day)",
        ),
    ] = None

    def figure_filters(self) -> dict[str, Any]:
        """The figure filters as CustomerFilters takes them; 422 naming the parameter for a bad one."""
        before = _moment(self.last_order_before, "lastOrderBefore", after=False)
        after = _moment(self.last_order_after, "lastOrderAfter", after=True)
        low, high = self.min_total_spent, self.max_total_spent
        if low is not None and high is not None and low > high:
            raise ValidationFailed.field("minTotalSpent", "must not be more than maxTotalSpent")
        if before is not None and after is not None and after >= before:
            raise ValidationFailed.field("lastOrderAfter", "must be before lastOrderBefore")
        return {
            "min_total_spent": low,
            "max_total_spent": high,
            "has_orders": self.has_orders,
            "last_order_before": before,
            "last_order_after": after,
        }


class SearchQuery(BaseModel):
    query: Annotated[SearchText, Field(description="at least 2 characters after trimming")]
    limit: SearchLimit = 10


class CreateHeaders(BaseModel):
    idempotency_key: IdempotencyKey = None


class WriteParams(CustomerPath):
    if_match: IfMatch = None


async def _detail(session: AsyncSession, view: service.CustomerView) -> CustomerDetail:
    """A written customer's answer, the figures read in the writing transaction (as GET shows them)."""
    contacts = [ContactOut.model_validate(c) for c in view.contacts]
    primary = next((c for c in contacts if c.is_primary), None)
    base = {k: getattr(view.customer, k) for k in CustomerOut.model_fields}
    figures = await service.order_figures(session, view.customer.id)
    return CustomerDetail(**base, **figures, primary_contact=primary, contacts=contacts)


@routes.get(
    "",
    summary="List customers",
    permission=("customers", "read"),
    params=ListQuery,
    answer=Answer(model=CustomerList),
    errors=ERRORS_READ,
    database="read",
)
async def list_customers(call: Call[ListQuery, None]) -> Response:
    query = call.params
    # A blank `search` (an empty search box: `?search=`) means no filter, as the prototype
    # treated it. The page searches at every keystroke, so one character is answered too (by
    # prefix, see crm.customers.queries.MatchShape); from two on it filters like /search.
    search = query.search
    filters = service.CustomerFilters(
        status=query.status,
        type=query.type,
        owner_id=query.owner_id,
        search=normalize_query(search, "search", minimum=1) if search is not None and search.strip() else None,
        **query.figure_filters(),
    )
    paging = query.paging()
    items, total, next_cursor = await service.list_customers(
        call.connection, filters, paging, query.sort_by, query.order(SortOrder.DESC)
    )
    page = CustomerList.model_validate(
        {"customers": items, "pagination": Pagination.of(paging, total, next_cursor)}, by_name=True
    )
    return json_response(page.model_dump_json(by_alias=True))


_SEARCH_ANSWER = TypeAdapter(list[CustomerListItem])


@routes.get(
    "/search",
    summary="Search customers, most relevant first",
    permission=("customers", "read"),
    params=SearchQuery,
    answer=Answer(model=list[CustomerListItem]),
    errors=ERRORS_READ,
    database="read",
)
async def search_customers(call: Call[SearchQuery, None]) -> Response:
    items = await service.search_customers(call.connection, normalize_query(call.params.query), call.params.limit)
    return json_response(_SEARCH_ANSWER.dump_json(_SEARCH_ANSWER.validate_python(items), by_alias=True))


@routes.get(
    "/segments",
    summary="Customer counts by status and type",
    permission=("customers", "read"),
    answer=Answer(model=Segments),
    errors=ERRORS_READ,
    database="read",
)
async def segments(call: Call[Any, None]) -> Response:
    data = await service.segments(call.connection)
    return json_response(Segments.model_validate(data).model_dump_json(by_alias=True))


@routes.get(
    "/{customer_id}",
    summary="Get a customer",
    permission=("customers", "read"),
    params=CustomerPath,
    answer=Answer(model=CustomerDetail, headers={"ETag": "the customer's version"}),
    errors=ERRORS_READ,
    database="read",
)
async def get_customer(call: Call[CustomerPath, None]) -> Response:
    data = await service.read_customer(call.connection, call.params.customer_id)
    # The ETag is the customer's version: it moves with every change made through the customer
    # (its fields, or contacts sent with it); contacts changed on their own carry their own.
    return json_response(
        CustomerDetail.model_validate(data).model_dump_json(by_alias=True), headers={"ETag": etag(data["version"])}
    )


@routes.post(
    "",
    summary="Create a customer, optionally with contacts",
    permission=("customers", "create"),
    params=CreateHeaders,
    body=CustomerCreate,
    answer=Answer(201, CustomerDetail, headers={"Location": "the new customer", "ETag": "its version"}),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def create_customer(call: Call[CreateHeaders, CustomerCreate]) -> Response:
    body = call.body
    actor = history.Actor.of(call.user)

    async def write() -> idempotency.Answer:
        view = await service.create_customer(call.session, body, actor)
        detail = await _detail(call.session, view)
        return idempotency.created(detail, f"/api/customers/{view.customer.id}", view.customer.version)

    return await idempotency.create_once(call, write)


@routes.put(
    "/{customer_id}",
    summary="Partially update a customer",
    permission=("customers", "update"),
    params=WriteParams,
    body=CustomerUpdate,
    answer=Answer(model=CustomerDetail, headers={"ETag": "the customer's new version"}),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def update_customer(call: Call[WriteParams, CustomerUpdate]) -> Response:
    params = call.params
    view = await service.update_customer(
        call.session, params.customer_id, call.body, history.Actor.of(call.user), parse_if_match(params.if_match)
    )
    detail = await _detail(call.session, view)
    return json_response(detail.model_dump_json(by_alias=True), headers={"ETag": etag(view.customer.version)})


@routes.delete(
    "/{customer_id}",
    summary="Delete a customer with its contacts and interactions",
    permission=("customers", "delete"),
    params=WriteParams,
    answer=Answer(204, description="Deleted"),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def delete_customer(call: Call[WriteParams, None]) -> Response:
    params = call.params
    await service.delete_customer(
        call.session, params.customer_id, history.Actor.of(call.user), parse_if_match(params.if_match)
    )
    return Response(status_code=204)
