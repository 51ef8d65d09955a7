"""History: `/api/customers/{customer_id}/history` and `/api/history`, each declared once.

Read-only by design: history is append-only, so no route here (or anywhere) changes or
removes an entry.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.dates import parse_range
from crm.common.openapi import ERRORS_READ
from crm.common.pagination import MAX_LIMIT, Cursor
from crm.common.params import EndDate, StartDate
from crm.common.responses import json_response
from crm.history import service
from crm.history.models import HistoryAction, HistoryEntity
from crm.history.queries import HistoryFilters
from crm.history.schemas import HistoryPage

routes = Routes("", tag="history")


class GlobalQuery(BaseModel):
    entity: HistoryEntity | None = None
    action: HistoryAction | None = None
    user_id: UUID | None = Field(default=None, alias="userId", description="the actor")
    start_date: StartDate = None
    end_date: EndDate = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="entries per page")] = 50
    cursor: Annotated[
        str | None,
        Field(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$", description="`pagination.nextCursor` of the previous page"),
    ] = None

    def filters(self, customer_id: UUID | None = None, field: str | None = None) -> HistoryFilters:
        dates = parse_range(self.start_date, self.end_date)
        return HistoryFilters(
            customer_id=customer_id,
            entity=self.entity.value if self.entity else None,
            action=self.action.value if self.action else None,
            field=field,
            user_id=self.user_id,
            start=dates.start,
            end=dates.end,
        )

    def after(self) -> Cursor | None:
        return Cursor.decode(self.cursor) if self.cursor is not None else None


class CustomerQuery(GlobalQuery):
    customer_id: UUID
    field: Annotated[str | None, Field(max_length=64, description="only entries that changed this field")] = None


@routes.get(
    "/api/customers/{customer_id}/history",
    summary="A customer's history with its contacts' and interactions', newest first",
    permission=("customers", "read"),
    params=CustomerQuery,
    answer=Answer(model=HistoryPage),
    errors=ERRORS_READ,
    database="read",
)
async def customer_history(call: Call[CustomerQuery, None]) -> Response:
    query = call.params
    page = await service.history_page(
        call.connection, query.filters(query.customer_id, query.field), query.after(), query.limit
    )
    return json_response(page.model_dump_json(by_alias=True))


@routes.get(
    "/api/history",
    summary="Every change, newest first (admins and managers)",
    permission=("history", "read"),
    params=GlobalQuery,
    answer=Answer(model=HistoryPage),
    errors=ERRORS_READ,
    database="read",
)
async def all_history(call: Call[GlobalQuery, None]) -> Response:
    query = call.params
    page = await service.history_page(call.connection, query.filters(), query.after(), query.limit)
    return json_response(page.model_dump_json(by_alias=True))
