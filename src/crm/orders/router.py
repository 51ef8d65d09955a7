"""A customer's orders and statistics: `/api/customers/{id}/orders` and `/statistics`.

These routes live with the Order Service integration (not in customers/) because their
behaviour is about that neighbour: validation, failure mapping, the circuit breaker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from crm.auth.dependencies import Grant, require
from crm.common.openapi import ERRORS_READ, problem_doc
from crm.common.pagination import MAX_PAGE, SortOrder, SortOrderQuery, parse_sort_order
from crm.common.responses import DecimalJSONResponse
from crm.db import SessionMaker
from crm.log import request_id_var
from crm.orders import service
from crm.orders.client import OrderQuery, OrderServiceClient
from crm.orders.schemas import Order, OrderPagination, OrderStatus

router = APIRouter(prefix="/api/customers", tags=["orders"])

OrderSortBy = Literal["created_at", "updated_at", "total_amount", "order_number", "status"]

_UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    502: problem_doc("The Order Service answered garbage, 5xx, or rejected the token"),
    503: problem_doc("The Order Service is not configured, unreachable, or paused"),
    504: problem_doc("The Order Service did not answer within ORDER_SERVICE_TIMEOUT"),
}


async def _client(request: Request) -> OrderServiceClient:
    client: OrderServiceClient = request.app.state.order_client
    return client


def _forwarded_headers(request: Request) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if authorization := request.headers.get("authorization"):
        headers["Authorization"] = authorization
    if request_id := request_id_var.get():
        headers["X-Request-ID"] = request_id
    return headers


class OrdersList(BaseModel):
    orders: list[Order]
    pagination: OrderPagination


@router.get(
    "/{customer_id}/orders",
    response_model=OrdersList,
    responses={**ERRORS_READ, **_UPSTREAM_ERRORS},
    summary="A customer's orders, from the Order Service",
)
async def customer_orders(
    customer_id: UUID,
    request: Request,
    maker: SessionMaker,
    _: Annotated[Grant, Depends(require("customers", "read"))],
    client: Annotated[OrderServiceClient, Depends(_client)],
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    status: Annotated[OrderStatus | None, Query()] = None,
    sort_by: Annotated[OrderSortBy | None, Query(alias="sortBy")] = None,
    sort_order: SortOrderQuery = None,
) -> DecimalJSONResponse:
    query = OrderQuery(
        page=page,
        limit=limit,
        status=status.value if status else None,
        sort_by=sort_by,
        sort_order=parse_sort_order(sort_order, SortOrder.DESC).value if sort_order else None,
    )
    result = await service.customer_orders(maker, client, customer_id, query, _forwarded_headers(request))
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


class CustomerStatistics(BaseModel):
    customer_id: UUID
    contacts: _ContactsFigures
    interactions: _InteractionFigures
    orders: _OrderFigures


@router.get(
    "/{customer_id}/statistics",
    response_model=CustomerStatistics,
    responses=ERRORS_READ,
    summary="A customer's contacts, interactions and orders in figures",
    description="Answers 200 with the CRM's own figures even when the Order Service is unavailable "
    "(then `orders.available` is false and `orders.reason` says why).",
)
async def customer_statistics(
    customer_id: UUID,
    request: Request,
    maker: SessionMaker,
    _: Annotated[Grant, Depends(require("customers", "read"))],
    client: Annotated[OrderServiceClient, Depends(_client)],
) -> DecimalJSONResponse:
    crm = await service.crm_figures(maker, customer_id)
    orders = await service.orders_statistics(client, customer_id, _forwarded_headers(request))
    return DecimalJSONResponse(service.statistics_document(customer_id, crm, orders))
