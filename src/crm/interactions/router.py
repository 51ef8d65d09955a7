"""`/api/interactions`: each endpoint declared once (see crm.api.endpoint).

The fixed paths are declared before `/{interaction_id}`, which would otherwise capture them.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, TypeAdapter
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.concurrency import etag, parse_if_match
from crm.common.openapi import ERRORS_READ, ERRORS_WRITE
from crm.common.pagination import Pagination, SortOrder
from crm.common.params import CursorPageQuery, DateRangeQuery, IdempotencyKey, IfMatch, SearchLimit, SortedQuery
from crm.common.responses import json_response
from crm.common.search import normalize_query
from crm.common.types import SearchText
from crm.contacts.schemas import CustomerSummary
from crm.customers.models import Customer
from crm.history import service as history
from crm.idempotency import service as idempotency
from crm.interactions import service
from crm.interactions.models import Interaction, InteractionType
from crm.interactions.schemas import (
    InteractionCreate,
    InteractionList,
    InteractionOut,
    InteractionStatistics,
    InteractionUpdate,
    InteractionWithCustomer,
    InteractionWithCustomerList,
)

routes = Routes("/api/interactions", tag="interactions")

InteractionSortBy = Literal["date", "created_at", "type", "subject"]
_SORT_HELP = "ties are broken by id"
_USER_HELP = "who recorded it"


class CustomerPath(BaseModel):
    customer_id: UUID


class InteractionPath(BaseModel):
    interaction_id: UUID


class WriteParams(InteractionPath):
    if_match: IfMatch = None


class CreateHeaders(BaseModel):
    idempotency_key: IdempotencyKey = None


class CustomerListQuery(CustomerPath, CursorPageQuery, SortedQuery, DateRangeQuery):
    type: InteractionType | None = None
    sort_by: InteractionSortBy = Field(default="date", alias="sortBy", description=_SORT_HELP)


class RangeQuery(CursorPageQuery, SortedQuery, DateRangeQuery):
    type: InteractionType | None = None
    user_id: UUID | None = Field(default=None, alias="userId", description=_USER_HELP)
    customer_id: UUID | None = Field(default=None, alias="customerId")
    sort_by: InteractionSortBy = Field(default="date", alias="sortBy", description=_SORT_HELP)


class StatisticsQuery(DateRangeQuery):
    user_id: UUID | None = Field(default=None, alias="userId", description=_USER_HELP)
    customer_id: UUID | None = Field(default=None, alias="customerId")


class SearchQuery(BaseModel):
    query: Annotated[SearchText, Field(description="at least 2 characters after trimming")]
    customer_id: UUID | None = Field(default=None, alias="customerId")
    limit: SearchLimit = 10


def _with_customer(interaction: Interaction, customer: Customer) -> InteractionWithCustomer:
    return InteractionWithCustomer(
        **InteractionOut.model_validate(interaction).model_dump(), customer=CustomerSummary.model_validate(customer)
    )


def _interaction(interaction: Interaction) -> Response:
    return json_response(
        InteractionOut.model_validate(interaction).model_dump_json(by_alias=True),
        headers={"ETag": etag(interaction.version)},
    )


@routes.get(
    "/customer/{customer_id}",
    summary="A customer's interactions, newest first by default",
    permission=("interactions", "read"),
    params=CustomerListQuery,
    answer=Answer(model=InteractionList),
    errors=ERRORS_READ,
    database="transaction",
)
async def list_for_customer(call: Call[CustomerListQuery, None]) -> Response:
    query = call.params
    filters = service.InteractionFilters(dates=query.dates(), type=query.type, customer_id=query.customer_id)
    paging = query.paging()
    rows, total, next_cursor = await service.list_for_customer(
        call.session, filters, paging, query.sort_by, query.order(SortOrder.DESC)
    )
    page = InteractionList(
        interactions=[InteractionOut.model_validate(i) for i in rows],
        pagination=Pagination.of(paging, total, next_cursor),
    )
    return json_response(page.model_dump_json(by_alias=True))


@routes.get(
    "/date-range",
    summary="Interactions in a date range, across customers",
    permission=("interactions", "read"),
    params=RangeQuery,
    answer=Answer(model=InteractionWithCustomerList),
    errors=ERRORS_READ,
    database="transaction",
)
async def list_in_range(call: Call[RangeQuery, None]) -> Response:
    query = call.params
    filters = service.InteractionFilters(
        dates=query.dates(), type=query.type, user_id=query.user_id, customer_id=query.customer_id
    )
    paging = query.paging()
    rows, total, next_cursor = await service.list_with_customers(
        call.session, filters, paging, query.sort_by, query.order(SortOrder.DESC)
    )
    page = InteractionWithCustomerList(
        interactions=[_with_customer(i, c) for i, c in rows], pagination=Pagination.of(paging, total, next_cursor)
    )
    return json_response(page.model_dump_json(by_alias=True))


@routes.get(
    "/statistics",
    summary="Interaction counts by type, UTC day and user",
    permission=("interactions", "read"),
    params=StatisticsQuery,
    answer=Answer(model=InteractionStatistics),
    errors=ERRORS_READ,
    database="read",
)
async def statistics(call: Call[StatisticsQuery, None]) -> Response:
    query = call.params
    filters = service.InteractionFilters(dates=query.dates(), user_id=query.user_id, customer_id=query.customer_id)
    # The service hands over the JSON document itself (see there): validating a ~1,000-day
    # byDate again on every dashboard poll would cost more than reading it.
    return json_response(await service.statistics(call.connection, filters))


_FOUND = TypeAdapter(list[InteractionWithCustomer])


@routes.get(
    "/search",
    summary="Search subjects and descriptions, most relevant first",
    permission=("interactions", "read"),
    params=SearchQuery,
    answer=Answer(model=list[InteractionWithCustomer]),
    errors=ERRORS_READ,
    database="transaction",
)
async def search_interactions(call: Call[SearchQuery, None]) -> Response:
    params = call.params
    rows = await service.search_interactions(
        call.session, normalize_query(params.query), params.customer_id, params.limit
    )
    return json_response(_FOUND.dump_json([_with_customer(i, c) for i, c in rows], by_alias=True))


@routes.get(
    "/{interaction_id}",
    summary="Get an interaction with its customer's summary",
    permission=("interactions", "read"),
    params=InteractionPath,
    answer=Answer(model=InteractionWithCustomer, headers={"ETag": "the interaction's version"}),
    errors=ERRORS_READ,
    database="transaction",
)
async def get_interaction(call: Call[InteractionPath, None]) -> Response:
    interaction, customer = await service.get_with_customer(call.session, call.params.interaction_id)
    return json_response(
        _with_customer(interaction, customer).model_dump_json(by_alias=True),
        headers={"ETag": etag(interaction.version)},
    )


@routes.post(
    "",
    summary="Record an interaction (its author is the caller)",
    permission=("interactions", "create"),
    params=CreateHeaders,
    body=InteractionCreate,
    answer=Answer(201, InteractionOut, headers={"Location": "the new interaction", "ETag": "its version"}),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def create_interaction(call: Call[CreateHeaders, InteractionCreate]) -> Response:
    body = call.body
    actor = history.Actor.of(call.user)

    async def write() -> idempotency.Answer:
        interaction = await service.create_interaction(call.session, body, actor)
        location = f"/api/interactions/{interaction.id}"
        return idempotency.created(InteractionOut.model_validate(interaction), location, interaction.version)

    return await idempotency.create_once(call, write)


@routes.put(
    "/{interaction_id}",
    summary="Partially update an interaction (employees: only their own)",
    permission=("interactions", "update"),
    params=WriteParams,
    body=InteractionUpdate,
    answer=Answer(model=InteractionOut, headers={"ETag": "the interaction's new version"}),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def update_interaction(call: Call[WriteParams, InteractionUpdate]) -> Response:
    params = call.params
    interaction = await service.update_interaction(
        call.session,
        params.interaction_id,
        call.body,
        call.user.own_only,
        history.Actor.of(call.user),
        parse_if_match(params.if_match),
    )
    return _interaction(interaction)


@routes.delete(
    "/{interaction_id}",
    summary="Delete an interaction (employees: only their own)",
    permission=("interactions", "delete"),
    params=WriteParams,
    answer=Answer(204, description="Deleted"),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def delete_interaction(call: Call[WriteParams, None]) -> Response:
    params = call.params
    await service.delete_interaction(
        call.session,
        params.interaction_id,
        call.user.own_only,
        history.Actor.of(call.user),
        parse_if_match(params.if_match),
    )
    return Response(status_code=204)
