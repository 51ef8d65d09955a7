"""`/api/contacts`: each endpoint declared once (see crm.api.endpoint)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, TypeAdapter
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.concurrency import etag, parse_if_match
from crm.common.openapi import ERRORS_READ, ERRORS_WRITE
from crm.common.params import IdempotencyKey, IfMatch, SearchLimit
from crm.common.responses import json_response
from crm.common.search import normalize_query
from crm.common.types import SearchText
from crm.contacts import service
from crm.contacts.models import Contact
from crm.contacts.schemas import ContactCreate, ContactOut, ContactUpdate, ContactWithCustomer, CustomerSummary
from crm.customers.models import Customer
from crm.history import service as history
from crm.idempotency import service as idempotency

routes = Routes("/api/contacts", tag="contacts")

_CONTACTS = TypeAdapter(list[ContactOut])
_FOUND = TypeAdapter(list[ContactWithCustomer])


class CustomerPath(BaseModel):
    customer_id: UUID


class ContactPath(BaseModel):
    contact_id: UUID


class WriteParams(ContactPath):
    if_match: IfMatch = None


class CreateHeaders(BaseModel):
    idempotency_key: IdempotencyKey = None


class SearchQuery(BaseModel):
    query: Annotated[SearchText, Field(description="at least 2 characters after trimming")]
    customer_id: UUID | None = Field(default=None, alias="customerId")
    limit: SearchLimit = 10


def _contact(contact: Contact) -> Response:
    return json_response(
        ContactOut.model_validate(contact).model_dump_json(by_alias=True), headers={"ETag": etag(contact.version)}
    )


def _with_customer(contact: Contact, customer: Customer) -> ContactWithCustomer:
    return ContactWithCustomer(
        **ContactOut.model_validate(contact).model_dump(), customer=CustomerSummary.model_validate(customer)
    )


def _list(contacts: list[Contact]) -> Response:
    return json_response(_CONTACTS.dump_json([ContactOut.model_validate(c) for c in contacts], by_alias=True))


@routes.get(
    "/customer/{customer_id}",
    summary="A customer's contacts, primary first, then newest",
    permission=("contacts", "read"),
    params=CustomerPath,
    answer=Answer(model=list[ContactOut]),
    errors=ERRORS_READ,
    database="transaction",
)
async def list_for_customer(call: Call[CustomerPath, None]) -> Response:
    return _list(await service.list_for_customer(call.session, call.params.customer_id))


@routes.get(
    "/search",
    summary="Search contacts",
    permission=("contacts", "read"),
    params=SearchQuery,
    answer=Answer(model=list[ContactWithCustomer]),
    errors=ERRORS_READ,
    database="transaction",
)
async def search_contacts(call: Call[SearchQuery, None]) -> Response:
    params = call.params
    found = await service.search_contacts(call.session, normalize_query(params.query), params.customer_id, params.limit)
    # Each with the same customer summary as GET /api/contacts/:id, so a result says whose it is.
    return json_response(_FOUND.dump_json([_with_customer(c, k) for c, k in found], by_alias=True))


@routes.get(
    "/{contact_id}",
    summary="Get a contact",
    permission=("contacts", "read"),
    params=ContactPath,
    answer=Answer(model=ContactWithCustomer, headers={"ETag": "the contact's version"}),
    errors=ERRORS_READ,
    database="transaction",
)
async def get_contact(call: Call[ContactPath, None]) -> Response:
    contact, customer = await service.get_with_customer(call.session, call.params.contact_id)
    document = _with_customer(contact, customer)
    return json_response(document.model_dump_json(by_alias=True), headers={"ETag": etag(contact.version)})


@routes.post(
    "",
    summary="Create a contact (the first one of a customer becomes primary)",
    permission=("contacts", "create"),
    params=CreateHeaders,
    body=ContactCreate,
    answer=Answer(201, ContactOut, headers={"Location": "the new contact", "ETag": "its version"}),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def create_contact(call: Call[CreateHeaders, ContactCreate]) -> Response:
    body = call.body
    actor = history.Actor.of(call.user)

    async def write() -> idempotency.Answer:
        contact = await service.create_contact(call.session, body, actor)
        return idempotency.created(ContactOut.model_validate(contact), f"/api/contacts/{contact.id}", contact.version)

    return await idempotency.create_once(call, write)


@routes.put(
    "/{contact_id}/primary",
    summary="Make a contact the primary one",
    permission=("contacts", "update"),
    params=WriteParams,
    answer=Answer(model=ContactOut, headers={"ETag": "the contact's new version"}),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def set_primary(call: Call[WriteParams, None]) -> Response:
    params = call.params
    actor = history.Actor.of(call.user)
    return _contact(await service.set_primary(call.session, params.contact_id, actor, parse_if_match(params.if_match)))


@routes.put(
    "/{contact_id}",
    summary="Partially update a contact",
    permission=("contacts", "update"),
    params=WriteParams,
    body=ContactUpdate,
    answer=Answer(model=ContactOut, headers={"ETag": "the contact's new version"}),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def update_contact(call: Call[WriteParams, ContactUpdate]) -> Response:
    params = call.params
    contact = await service.update_contact(
        call.session, params.contact_id, call.body, history.Actor.of(call.user), parse_if_match(params.if_match)
    )
    return _contact(contact)


@routes.delete(
    "/{contact_id}",
    summary="Delete a contact (the oldest remaining one becomes primary if needed)",
    permission=("contacts", "delete"),
    params=WriteParams,
    answer=Answer(204, description="Deleted"),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def delete_contact(call: Call[WriteParams, None]) -> Response:
    params = call.params
    await service.delete_contact(
        call.session, params.contact_id, history.Actor.of(call.user), parse_if_match(params.if_match)
    )
    return Response(status_code=204)
