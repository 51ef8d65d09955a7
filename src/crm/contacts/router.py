from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status

from crm.auth.dependencies import Grant, require
from crm.common.concurrency import IfMatchHeader, parse_if_match, set_etag
from crm.common.openapi import ERRORS_READ, ERRORS_WRITE
from crm.common.search import normalize_query
from crm.common.types import SearchText
from crm.contacts import service
from crm.contacts.schemas import ContactCreate, ContactOut, ContactUpdate, ContactWithCustomer, CustomerSummary
from crm.db import Session
from crm.idempotency import service as idempotency
from crm.idempotency.service import IdempotencyKeyHeader

router = APIRouter(prefix="/api/contacts", tags=["contacts"])


@router.get(
    "/customer/{customer_id}",
    response_model=list[ContactOut],
    responses=ERRORS_READ,
    summary="A customer's contacts, primary first, then newest",
)
async def list_for_customer(
    customer_id: UUID, session: Session, _: Annotated[Grant, Depends(require("contacts", "read"))]
) -> list[ContactOut]:
    return [ContactOut.model_validate(c) for c in await service.list_for_customer(session, customer_id)]


@router.get("/search", response_model=list[ContactOut], responses=ERRORS_READ, summary="Search contacts")
async def search_contacts(
    session: Session,
    _: Annotated[Grant, Depends(require("contacts", "read"))],
    query: Annotated[SearchText, Query(description="at least 2 characters after trimming")],
    customer_id: Annotated[UUID | None, Query(alias="customerId")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[ContactOut]:
    found = await service.search_contacts(session, normalize_query(query), customer_id, limit)
    return [ContactOut.model_validate(c) for c in found]


@router.get("/{contact_id}", response_model=ContactWithCustomer, responses=ERRORS_READ, summary="Get a contact")
async def get_contact(
    contact_id: UUID,
    response: Response,
    session: Session,
    _: Annotated[Grant, Depends(require("contacts", "read"))],
) -> ContactWithCustomer:
    contact, customer = await service.get_with_customer(session, contact_id)
    set_etag(response, contact.version)
    return ContactWithCustomer(
        **ContactOut.model_validate(contact).model_dump(), customer=CustomerSummary.model_validate(customer)
    )


@router.post(
    "",
    response_model=ContactOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS_WRITE,
    summary="Create a contact (the first one of a customer becomes primary)",
)
async def create_contact(
    body: ContactCreate,
    request: Request,
    session: Session,
    grant: Annotated[Grant, Depends(require("contacts", "create"))],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def write() -> idempotency.Answer:
        contact = await service.create_contact(session, body)
        return idempotency.created(ContactOut.model_validate(contact), f"/api/contacts/{contact.id}", contact.version)

    print_ = idempotency.fingerprint("POST", request.url.path, body.model_dump(mode="json"))
    return await idempotency.run_once(session, grant.user_id, idempotency_key, print_, write)


@router.put(
    "/{contact_id}/primary", response_model=ContactOut, responses=ERRORS_WRITE, summary="Make a contact the primary one"
)
async def set_primary(
    contact_id: UUID,
    response: Response,
    session: Session,
    _: Annotated[Grant, Depends(require("contacts", "update"))],
    if_match: IfMatchHeader = None,
) -> ContactOut:
    contact = await service.set_primary(session, contact_id, parse_if_match(if_match))
    set_etag(response, contact.version)
    return ContactOut.model_validate(contact)


@router.put("/{contact_id}", response_model=ContactOut, responses=ERRORS_WRITE, summary="Partially update a contact")
async def update_contact(
    contact_id: UUID,
    body: ContactUpdate,
    response: Response,
    session: Session,
    _: Annotated[Grant, Depends(require("contacts", "update"))],
    if_match: IfMatchHeader = None,
) -> ContactOut:
    contact = await service.update_contact(session, contact_id, body, parse_if_match(if_match))
    set_etag(response, contact.version)
    return ContactOut.model_validate(contact)


@router.delete(
    "/{contact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS_WRITE,
    summary="Delete a contact (the oldest remaining one becomes primary if needed)",
)
async def delete_contact(
    contact_id: UUID,
    session: Session,
    _: Annotated[Grant, Depends(require("contacts", "delete"))],
    if_match: IfMatchHeader = None,
) -> Response:
    await service.delete_contact(session, contact_id, parse_if_match(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
