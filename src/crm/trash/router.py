"""The trash: `GET /api/trash` and the three restores, each declared once.

A restore needs the permission to delete the record (whoever may delete it may take the delete
back); an employee restores only the interactions they recorded, and lists only those.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.concurrency import etag
from crm.common.openapi import ERRORS_READ, ERRORS_WRITE, problem_doc
from crm.common.pagination import MAX_LIMIT, Cursor
from crm.common.responses import json_response
from crm.contacts.schemas import ContactOut
from crm.customers import service as customers
from crm.customers.schemas import CustomerDetail, CustomerOut
from crm.history import service as history
from crm.interactions.schemas import InteractionOut
from crm.trash import service
from crm.trash.schemas import TrashEntity, TrashPage

routes = Routes("", tag="trash")

_GONE: dict[int | str, dict[str, Any]] = {410: problem_doc("The record was erased (`urn:crm:problem:erased`)")}
ERRORS_RESTORE: dict[int | str, dict[str, Any]] = {
    **ERRORS_WRITE,
    **_GONE,
    409: problem_doc(
        "The record is live, its customer is in the trash, or (a customer) a live customer has its email now; "
        "`errors` names the field"
    ),
}


class TrashQuery(BaseModel):
    entity: TrashEntity | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="items per page")] = 50
    cursor: Annotated[
        str | None,
        Field(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$", description="`pagination.nextCursor` of the previous page"),
    ] = None


class CustomerPath(BaseModel):
    customer_id: UUID


class ContactPath(BaseModel):
    contact_id: UUID


class InteractionPath(BaseModel):
    interaction_id: UUID


@routes.get(
    "/api/trash",
    summary="What the caller could restore, newest first",
    permission=("trash", "read"),
    params=TrashQuery,
    answer=Answer(model=TrashPage),
    errors=ERRORS_READ,
    database="read",
)
async def list_trash(call: Call[TrashQuery, None]) -> Response:
    query = call.params
    cursor = Cursor.decode(query.cursor) if query.cursor is not None else None
    page = await service.list_trash(
        call.connection, call.user, query.entity, cursor, query.limit, call.settings.trash_days
    )
    return json_response(page.model_dump_json(by_alias=True))


@routes.post(
    "/api/customers/{customer_id}/restore",
    summary="Restore a deleted customer with exactly what its delete took",
    permission=("customers", "delete"),
    params=CustomerPath,
    answer=Answer(model=CustomerDetail, headers={"ETag": "the customer's new version"}),
    errors=ERRORS_RESTORE,
    database="transaction",
)
async def restore_customer(call: Call[CustomerPath, None]) -> Response:
    restored = await service.restore_customer(call.session, call.params.customer_id, history.Actor.of(call.user))
    contacts = [ContactOut.model_validate(c) for c in restored.contacts]
    base = {k: getattr(restored.customer, k) for k in CustomerOut.model_fields}
    # Its order figures were kept while it was in the trash (they follow the Order Service).
    figures = await customers.order_figures(call.session, restored.customer.id)
    detail = CustomerDetail(
        **base, **figures, primary_contact=next((c for c in contacts if c.is_primary), None), contacts=contacts
    )
    return json_response(detail.model_dump_json(by_alias=True), headers={"ETag": etag(restored.customer.version)})


@routes.post(
    "/api/contacts/{contact_id}/restore",
    summary="Restore a deleted contact (primary only if its customer has none now)",
    permission=("contacts", "delete"),
    params=ContactPath,
    answer=Answer(model=ContactOut, headers={"ETag": "the contact's new version"}),
    errors=ERRORS_RESTORE,
    database="transaction",
)
async def restore_contact(call: Call[ContactPath, None]) -> Response:
    contact = await service.restore_contact(call.session, call.params.contact_id, history.Actor.of(call.user))
    return json_response(
        ContactOut.model_validate(contact).model_dump_json(by_alias=True), headers={"ETag": etag(contact.version)}
    )


@routes.post(
    "/api/interactions/{interaction_id}/restore",
    summary="Restore a deleted interaction (an employee: one they recorded)",
    permission=("interactions", "delete"),
    params=InteractionPath,
    answer=Answer(model=InteractionOut, headers={"ETag": "the interaction's new version"}),
    errors=ERRORS_RESTORE,
    database="transaction",
)
async def restore_interaction(call: Call[InteractionPath, None]) -> Response:
    interaction = await service.restore_interaction(
        call.session, call.params.interaction_id, history.Actor.of(call.user), call.user.own_only
    )
    return json_response(
        InteractionOut.model_validate(interaction).model_dump_json(by_alias=True),
        headers={"ETag": etag(interaction.version)},
    )
