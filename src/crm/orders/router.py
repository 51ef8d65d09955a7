"""A customer's orders and statistics: `/api/customers/{id}/orders` and `/statistics`.

These routes live with the Order Service integration (not in customers/) because their
behaviour is about that neighbour: validation, failure mapping, the circuit breaker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.openapi import ERRORS_READ, problem_doc
from crm.common.pagination import MAX_PAGE, SortOrder, parse_sort_order
from crm.common.params import Limit, SortOrderParam
from crm.common.responses import DecimalJSONResponse
from crm.log import request_id_var
from crm.orders import service
from crm.orders.client import OrderQuery, OrderServiceClient
from crm.orders.schemas import Order, OrderPagination, OrderStatus

routes = Routes("/api/customers", tag="orders")

OrderSortBy = Literal["created_at", "updated_at", "total_amount", "order_number", "status"]

_UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    502: problem_doc("The Order Service answered garbage, 5xx, or rejected the token"),
    503: problem_doc("The Order Service is not configured, unreachable, or paused"),
    504: problem_doc("The Order Service did not answer within ORDER_SERVICE_TIMEOUT"),
}


def _client(call: Call[Any, None]) -> OrderServiceClient:
    client: OrderServiceClient = call.state.order_client
    return client


def _forwarded_headers(call: Call[Any, None]) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if authorization := call.header(b"authorization"):
        headers["Authorization"] = authorization
    if request_id := request_id_var.get():
        headers["X-Request-ID"] = request_id
    return headers


class CustomerPath(BaseModel):
    customer_id: UUID


class OrdersQuery(CustomerPath):
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    limit: Limit = 10
    status: OrderStatus | None = None
    sort_by: OrderSortBy | None = Field(default=None, alias="sortBy")
    sort_order: SortOrderParam = None


class OrdersList(BaseModel):
    orders: list[Order]
    pagination: OrderPagination


# Neither route holds a database connection while it waits for the Order Service: the service
# opens short sessions of its own around the call (database=None).
@routes.get(
    "/{customer_id}/orders",
    summary="A customer's orders, from the Order Service",
    permission=("customers", "read"),
    params=OrdersQuery,
    answer=Answer(model=OrdersList),
    errors={**ERRORS_READ, **_UPSTREAM_ERRORS},
)
async def customer_orders(call: Call[OrdersQuery, None]) -> Response:
    params = call.params
    query = OrderQuery(
        page=params.page,
        limit=params.limit,
        status=params.status.value if params.status else None,
        sort_by=params.sort_by,
        sort_order=parse_sort_order(params.sort_order, SortOrder.DESC).value if params.sort_order else None,
    )
    result = await service.customer_orders(
        call.sessionmaker, _client(call), params.customer_id, query, _forwarded_headers(call)
    )
    return DecimalJSONResponse(result.model_dump(mode="json", by_alias=True))


class _ContactsFigures(BaseModel):
    total: int


class _InteractionFigures(BaseModel):
    total: int
    by_type: dict[str, int] = Field(alias="byType")
    first_interaction_date: datetime | None = Field(alias="firstInteractionDate")
    last_interaction_date: datetime | None = Field(alias="lastInteractionDate")


class _OrderFigures(BaseModel):
    available: bool
    reason: str | None = Field(default=None, description="why `available` is false")
    total: int | None = None
    total_amount: float | None = Field(default=None, alias="totalAmount", description="exact, two decimals")
    average_amount: float | None = Field(default=None, alias="averageAmount", description="null without orders")
    last_order_date: datetime | None = Field(default=None, alias="lastOrderDate")
    by_status: dict[str, int] | None = Field(default=None, alias="byStatus")
    truncated: bool | None = Field(default=None, description="true when the customer has over 10,000 orders")
    source: Literal["projection"] | None = Field(
        default=None,
        description="`projection` when the Order Service could not answer and these figures come from the "
        "CRM's own projection of its orders (absent when they come from the Order Service)",
    )
    as_of: datetime | None = Field(default=None, description="with `source: projection`: when they last changed")


class CustomerStatistics(BaseModel):
    customer_id: UUID
    contacts: _ContactsFigures
    interactions: _InteractionFigures
    orders: _OrderFigures


@routes.get(
    "/{customer_id}/statistics",
    summary="A customer's contacts, interactions and orders in figures",
    description="Answers 200 with the CRM's own figures even when the Order Service is unavailable: "
    "then the orders' figures come from the CRM's projection of the Order Service's orders "
    "(`orders.source` is `projection`, `orders.as_of` says how fresh) once it has synced that customer, "
    "else `orders.available` is false and `orders.reason` says why.",
    permission=("customers", "read"),
    params=CustomerPath,
    answer=Answer(model=CustomerStatistics),
    errors=ERRORS_READ,
)
async def customer_statistics(call: Call[CustomerPath, None]) -> Response:
    customer_id = call.params.customer_id
    crm = await service.crm_figures(call.sessionmaker, customer_id)
    orders = await service.orders_statistics(_client(call), customer_id, _forwarded_headers(call))
    if not orders["available"]:
        orders = await service.projection_statistics(call.sessionmaker, customer_id, orders)
    return DecimalJSONResponse(service.statistics_document(customer_id, crm, orders))
