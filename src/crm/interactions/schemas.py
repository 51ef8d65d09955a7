from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import AfterValidator, ConfigDict, Field

from crm.common.pagination import PagedList
from crm.common.schemas import PatchBody, RequestBody, ResponseBody
from crm.common.types import Notes, Subject
from crm.contacts.schemas import CustomerSummary
from crm.interactions.models import InteractionType


def _utc(value: datetime) -> datetime:
    # A moment without an offset means UTC, as query dates do (common/dates.py). Normalising here
    # also turns an offset that pushes year 1 or 9999 out of range into a 422, not a driver error.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of the supported date range") from None


Moment = Annotated[datetime, AfterValidator(_utc)]


class InteractionCreate(RequestBody):
    customer_id: UUID
    contact_id: UUID | None = Field(default=None, description="must be a contact of the customer")
    type: InteractionType
    subject: Subject
    description: Notes | None = None
    date: Moment | None = Field(default=None, description="when it happened; defaults to now")


class InteractionUpdate(PatchBody):
    _required: ClassVar[frozenset[str]] = frozenset({"type", "subject", "date"})

    # Accepted only so that a client echoing the interaction back gets a precise error when it differs.
    customer_id: UUID | None = Field(default=None, description="cannot change; must equal the current value")
    contact_id: UUID | None = Field(default=None, description="a contact of the same customer, or null")
    type: InteractionType | None = None
    subject: Subject | None = None
    description: Notes | None = None
    date: Moment | None = None


class InteractionOut(ResponseBody):
    id: UUID
    customer_id: UUID
    contact_id: UUID | None
    user_id: UUID = Field(description="the user who recorded it")
    type: InteractionType
    subject: str
    description: str | None
    date: datetime
    version: int
    created_at: datetime
    updated_at: datetime


class InteractionWithCustomer(InteractionOut):
    customer: CustomerSummary


class InteractionList(PagedList):
    interactions: list[InteractionOut]


class InteractionWithCustomerList(PagedList):
    interactions: list[InteractionWithCustomer]


class InteractionStatistics(ResponseBody):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    total: int
    by_type: dict[str, int] = Field(alias="byType", description="every type, zero counts included")
    by_date: dict[str, int] = Field(
        alias="byDate", description="UTC day (YYYY-MM-DD) -> count, ascending; days without interactions are absent"
    )
    by_user: dict[str, int] = Field(alias="byUser", description="user id -> count, largest first")
