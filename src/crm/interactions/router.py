from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status

from crm.auth.dependencies import Grant, require
from crm.auth.permissions import Scope
from crm.common.concurrency import IfMatchHeader, parse_if_match, set_etag
from crm.common.dates import parse_range
from crm.common.openapi import ERRORS_READ, ERRORS_WRITE
from crm.common.pagination import CursorPaging, Pagination, SortOrder, SortOrderQuery, parse_sort_order
from crm.common.search import normalize_query
from crm.common.types import SearchText
from crm.contacts.schemas import CustomerSummary
from crm.customers.models import Customer
from crm.db import CoreConnection, Session
from crm.idempotency import service as idempotency
from crm.idempotency.service import IdempotencyKeyHeader
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

router = APIRouter(prefix="/api/interactions", tags=["interactions"])

# The fixed paths below are declared before `/{interaction_id}`, which would otherwise capture them.

InteractionSortBy = Literal["date", "created_at", "type", "subject"]
DATE_HELP = "ISO 8601 date or date-time (UTC unless an offset is given)"
StartDate = Annotated[str | None, Query(alias="startDate", description=DATE_HELP + "; inclusive")]
EndDate = Annotated[
    str | None, Query(alias="endDate", description=DATE_HELP + "; inclusive, a date-only value covers that whole day")
]
TypeFilter = Annotated[InteractionType | None, Query(alias="type")]
UserFilter = Annotated[UUID | None, Query(alias="userId", description="who recorded it")]
CustomerFilter = Annotated[UUID | None, Query(alias="customerId")]
SortByQuery = Annotated[InteractionSortBy, Query(alias="sortBy", description="ties are broken by id")]


def _with_customer(interaction: Interaction, customer: Customer) -> InteractionWithCustomer:
    return InteractionWithCustomer(
        **InteractionOut.model_validate(interaction).model_dump(), customer=CustomerSummary.model_validate(customer)
    )


def _author_only(grant: Grant) -> UUID | None:
    """The user whose interactions the grant is limited to, or None when it reaches all of them."""
    return grant.user_id if grant.scope is Scope.own else None


@router.get(
    "/customer/{customer_id}",
    response_model=InteractionList,
    responses=ERRORS_READ,
    summary="A customer's interactions, newest first by default",
)
async def list_for_customer(
    customer_id: UUID,
    session: Session,
    _: Annotated[Grant, Depends(require("interactions", "read"))],
    paging: CursorPaging,
    type_: TypeFilter = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    sort_by: SortByQuery = "date",
    sort_order: SortOrderQuery = None,
) -> InteractionList:
    filters = service.InteractionFilters(dates=parse_range(start_date, end_date), type=type_, customer_id=customer_id)
    order = parse_sort_order(sort_order, SortOrder.DESC)
    rows, total, next_cursor = await service.list_for_customer(session, filters, paging, sort_by, order)
    return InteractionList(
        interactions=[InteractionOut.model_validate(i) for i in rows],
        pagination=Pagination.of(paging, total, next_cursor),
    )


@router.get(
    "/date-range",
    response_model=InteractionWithCustomerList,
    responses=ERRORS_READ,
    summary="Interactions in a date range, across customers",
)
async def list_in_range(
    session: Session,
    _: Annotated[Grant, Depends(require("interactions", "read"))],
    paging: CursorPaging,
    start_date: StartDate = None,
    end_date: EndDate = None,
    type_: TypeFilter = None,
    user_id: UserFilter = None,
    customer_id: CustomerFilter = None,
    sort_by: SortByQuery = "date",
    sort_order: SortOrderQuery = None,
) -> InteractionWithCustomerList:
    filters = service.InteractionFilters(
        dates=parse_range(start_date, end_date), type=type_, user_id=user_id, customer_id=customer_id
    )
    order = parse_sort_order(sort_order, SortOrder.DESC)
    rows, total, next_cursor = await service.list_with_customers(session, filters, paging, sort_by, order)
    return InteractionWithCustomerList(
        interactions=[_with_customer(i, c) for i, c in rows], pagination=Pagination.of(paging, total, next_cursor)
    )


@router.get(
    "/statistics",
    response_model=InteractionStatistics,
    responses=ERRORS_READ,
    summary="Interaction counts by type, UTC day and user",
)
async def statistics(
    _: Annotated[Grant, Depends(require("interactions", "read"))],
    connection: CoreConnection,
    start_date: StartDate = None,
    end_date: EndDate = None,
    user_id: UserFilter = None,
    customer_id: CustomerFilter = None,
) -> Response:
    filters = service.InteractionFilters(
        dates=parse_range(start_date, end_date), user_id=user_id, customer_id=customer_id
    )
    # The service hands over the JSON document itself (see there): FastAPI validating a
    # ~1,000-day byDate again on every dashboard poll would cost more than reading it.
    return Response(await service.statistics(connection, filters), media_type="application/json")


@router.get(
    "/search",
    response_model=list[InteractionWithCustomer],
    responses=ERRORS_READ,
    summary="Search subjects and descriptions, most relevant first",
)
async def search_interactions(
    session: Session,
    _: Annotated[Grant, Depends(require("interactions", "read"))],
    query: Annotated[SearchText, Query(description="at least 2 characters after trimming")],
    customer_id: CustomerFilter = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[InteractionWithCustomer]:
    rows = await service.search_interactions(session, normalize_query(query), customer_id, limit)
    return [_with_customer(i, c) for i, c in rows]


@router.get(
    "/{interaction_id}",
    response_model=InteractionWithCustomer,
    responses=ERRORS_READ,
    summary="Get an interaction with its customer's summary",
)
async def get_interaction(
    interaction_id: UUID,
    response: Response,
    session: Session,
    _: Annotated[Grant, Depends(require("interactions", "read"))],
) -> InteractionWithCustomer:
    interaction, customer = await service.get_with_customer(session, interaction_id)
    set_etag(response, interaction.version)
    return _with_customer(interaction, customer)


@router.post(
    "",
    response_model=InteractionOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS_WRITE,
    summary="Record an interaction (its author is the caller)",
)
async def create_interaction(
    body: InteractionCreate,
    request: Request,
    session: Session,
    grant: Annotated[Grant, Depends(require("interactions", "create"))],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def write() -> idempotency.Answer:
        interaction = await service.create_interaction(session, body, grant.user_id)
        location = f"/api/interactions/{interaction.id}"
        return idempotency.created(InteractionOut.model_validate(interaction), location, interaction.version)

    print_ = idempotency.fingerprint("POST", request.url.path, body.model_dump(mode="json"))
    return await idempotency.run_once(session, grant.user_id, idempotency_key, print_, write)


@router.put(
    "/{interaction_id}",
    response_model=InteractionOut,
    responses=ERRORS_WRITE,
    summary="Partially update an interaction (employees: only their own)",
)
async def update_interaction(
    interaction_id: UUID,
    body: InteractionUpdate,
    response: Response,
    session: Session,
    grant: Annotated[Grant, Depends(require("interactions", "update"))],
    if_match: IfMatchHeader = None,
) -> InteractionOut:
    interaction = await service.update_interaction(
        session, interaction_id, body, _author_only(grant), parse_if_match(if_match)
    )
    set_etag(response, interaction.version)
    return InteractionOut.model_validate(interaction)


@router.delete(
    "/{interaction_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS_WRITE,
    summary="Delete an interaction (employees: only their own)",
)
async def delete_interaction(
    interaction_id: UUID,
    session: Session,
    grant: Annotated[Grant, Depends(require("interactions", "delete"))],
    if_match: IfMatchHeader = None,
) -> Response:
    await service.delete_interaction(session, interaction_id, _author_only(grant), parse_if_match(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
