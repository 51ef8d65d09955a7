"""Events: the pull feed `/api/events` and the relay's `/api/events/status`, each declared once."""

from __future__ import annotations

import json
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.openapi import ERRORS_READ
from crm.common.pagination import MAX_LIMIT, Cursor
from crm.common.responses import json_response
from crm.errors import ValidationFailed
from crm.events import service
from crm.events.schemas import EventsPage, RelayStatus

routes = Routes("", tag="events")


class FeedQuery(BaseModel):
    after: Annotated[
        str | None,
        Field(
            max_length=2048,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="`pagination.nextCursor` of an earlier page: the events published after it",
        ),
    ] = None
    type: Annotated[str | None, Field(max_length=64, description="only events of this type (crm.customer.updated)")] = (
        None
    )
    customer_id: UUID | None = Field(default=None, alias="customerId", description="only this customer's events")
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="events per page")] = 50


@routes.get(
    "/api/events/status",
    summary="The relay: events waiting to be published, the oldest one's age, leadership (admins)",
    permission=("event_relay", "read"),
    answer=Answer(model=RelayStatus),
    errors=ERRORS_READ,
    database="read",
)
async def relay_status(call: Call[BaseModel, None]) -> Response:
    figures = await service.status(call.connection, call.settings)
    return json_response(json.dumps(figures).encode())


@routes.get(
    "/api/events",
    summary="Published events in the order they were published, after a cursor (admins and managers)",
    permission=("events", "read"),
    params=FeedQuery,
    answer=Answer(model=EventsPage),
    errors=ERRORS_READ,
    database="read",
)
async def feed(call: Call[FeedQuery, None]) -> Response:
    query = call.params
    try:
        after = Cursor.decode(query.after) if query.after is not None else None
    except ValidationFailed:
        raise ValidationFailed.field("after", "is not a cursor this service issued") from None
    page = await service.feed_page(call.connection, after, query.type, query.customer_id, query.limit)
    return json_response(page)
