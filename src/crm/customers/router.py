from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import TypeAdapter

from crm.auth.dependencies import Grant, require
from crm.common.concurrency import IfMatchHeader, etag, parse_if_match, set_etag
from crm.common.openapi import ERRORS_READ, ERRORS_WRITE
from crm.common.pagination import CursorPaging, PageParams, Pagination, SortOrder, SortOrderQuery, parse_sort_order
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
from crm.db import ReadConnection, Session
from crm.idempotency import service as idempotency
from crm.idempotency.service import IdempotencyKeyHeader

router = APIRouter(prefix="/api/customers", tags=["customers"])

CustomerSortBy = Literal[
    "created_at", "updated_at", "first_name", "last_name", "email", "company_name", "status", "type"
]


def _detail(view: service.CustomerView) -> CustomerDetail:
    contacts = [ContactOut.model_validate(c) for c in view.contacts]
    primary = next((c for c in contacts if c.is_primary), None)
    base = {k: getattr(view.customer, k) for k in CustomerOut.model_fields}
    return CustomerDetail(**base, primary_contact=primary, contacts=contacts)


@router.get("", response_model=CustomerList, responses=ERRORS_READ, summary="List customers")
async def list_customers(
    # Authorization before the connection: a refused request never takes one from the pool.
    _: Annotated[Grant, Depends(require("customers", "read"))],
    connection: ReadConnection,
    paging: CursorPaging,
    status_: Annotated[CustomerStatus | None, Query(alias="status")] = None,
    type_: Annotated[CustomerType | None, Query(alias="type")] = None,
    owner_id: Annotated[UUID | None, Query(alias="ownerId")] = None,
    search: Annotated[SearchText | None, Query(description="filters like /search")] = None,
    sort_by: Annotated[CustomerSortBy, Query(alias="sortBy")] = "created_at",
    sort_order: SortOrderQuery = None,
) -> Response:
    # A blank `search` (an empty search box: `?search=`) means no filter, as the prototype
    # treated it; anything else follows the search endpoint's rules (2-200 characters).
    filters = service.CustomerFilters(
        status=status_,
        type=type_,
        owner_id=owner_id,
        search=normalize_query(search, "search") if search is not None and search.strip() else None,
    )
    order = parse_sort_order(sort_order, SortOrder.DESC)
    items, total, next_cursor = await service.list_customers(connection, filters, paging, sort_by, order)
    # Serialised once here: returning the model would have FastAPI validate it a second time.
    return Response(list_page_json(items, paging, total, next_cursor), media_type="application/json")


def list_page_json(items: list[dict[str, Any]], paging: PageParams, total: int, next_cursor: str | None) -> bytes:
    """The list's answer (also rendered by crm.customers.fast_read for plain first pages)."""
    page = CustomerList.model_validate(
        {"customers": items, "pagination": Pagination.of(paging, total, next_cursor)}, by_name=True
    )
    return page.model_dump_json(by_alias=True).encode()


@router.get(
    "/search",
    response_model=list[CustomerListItem],
    responses=ERRORS_READ,
    summary="Search customers, most relevant first",
)
async def search_customers(
    # Authorization before the connection: a refused request never takes one from the pool.
    _: Annotated[Grant, Depends(require("customers", "read"))],
    connection: ReadConnection,
    query: Annotated[SearchText, Query(description="at least 2 characters after trimming")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    items = await service.search_customers(connection, normalize_query(query), limit)
    return Response(search_json(items), media_type="application/json")


_SEARCH_ANSWER = TypeAdapter(list[CustomerListItem])


def search_json(items: list[dict[str, Any]]) -> bytes:
    """The search's answer, serialised once (also by crm.customers.fast_search): returning the
    models would have FastAPI validate them a second time."""
    return _SEARCH_ANSWER.dump_json(_SEARCH_ANSWER.validate_python(items), by_alias=True)


@router.get("/segments", response_model=Segments, responses=ERRORS_READ, summary="Customer counts by status and type")
async def segments(
    _: Annotated[Grant, Depends(require("customers", "read"))], connection: ReadConnection
) -> dict[str, object]:
    return await service.segments(connection)


@router.get("/{customer_id}", response_model=CustomerDetail, responses=ERRORS_READ, summary="Get a customer")
async def get_customer(
    customer_id: UUID,
    _: Annotated[Grant, Depends(require("customers", "read"))],
    connection: ReadConnection,
) -> Response:
    data = await service.read_customer(connection, customer_id)
    # The ETag is the customer's version: it moves with every change made through the customer
    # (its fields, or contacts sent with it); contacts changed on their own carry their own.
    # Serialised here, once: returning the model would have FastAPI validate it a second time.
    return Response(
        CustomerDetail.model_validate(data).model_dump_json(by_alias=True),
        media_type="application/json",
        headers={"ETag": etag(data["version"])},
    )


@router.post(
    "",
    response_model=CustomerDetail,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS_WRITE,
    summary="Create a customer, optionally with contacts",
)
async def create_customer(
    body: CustomerCreate,
    request: Request,
    session: Session,
    grant: Annotated[Grant, Depends(require("customers", "create"))],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def write() -> idempotency.Answer:
        view = await service.create_customer(session, body, grant.user_id)
        location = f"/api/customers/{view.customer.id}"
        return idempotency.created(_detail(view), location, view.customer.version)

    print_ = idempotency.fingerprint("POST", request.url.path, body.model_dump(mode="json"))
    return await idempotency.run_once(session, grant.user_id, idempotency_key, print_, write)


@router.put(
    "/{customer_id}", response_model=CustomerDetail, responses=ERRORS_WRITE, summary="Partially update a customer"
)
async def update_customer(
    customer_id: UUID,
    body: CustomerUpdate,
    response: Response,
    session: Session,
    _: Annotated[Grant, Depends(require("customers", "update"))],
    if_match: IfMatchHeader = None,
) -> CustomerDetail:
    view = await service.update_customer(session, customer_id, body, parse_if_match(if_match))
    set_etag(response, view.customer.version)
    return _detail(view)


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS_WRITE,
    summary="Delete a customer with its contacts and interactions",
)
async def delete_customer(
    customer_id: UUID,
    session: Session,
    _: Annotated[Grant, Depends(require("customers", "delete"))],
    if_match: IfMatchHeader = None,
) -> Response:
    await service.delete_customer(session, customer_id, parse_if_match(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
