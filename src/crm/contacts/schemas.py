from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import Field, computed_field

from crm.common.schemas import PatchBody, RequestBody, ResponseBody
from crm.common.types import Email, Name100, Phone, Short, display_name

NAME_HELP = 'read-only: the company name of a business customer that has one, else "first_name last_name"'


class ContactFields(RequestBody):
    first_name: Name100
    last_name: Name100
    position: Short | None = None
    email: Email | None = None
    phone: Phone | None = None
    is_primary: bool = False


class ContactCreate(ContactFields):
    customer_id: UUID


class ContactUpdate(PatchBody):
    _required: ClassVar[frozenset[str]] = frozenset({"first_name", "last_name", "is_primary"})

    # Accepted only so that a client echoing the contact back gets a precise error when it differs.
    customer_id: UUID | None = Field(default=None, description="cannot change; must equal the current value")
    first_name: Name100 | None = None
    last_name: Name100 | None = None
    position: Short | None = None
    email: Email | None = None
    phone: Phone | None = None
    is_primary: bool | None = None


class NestedContactUpsert(PatchBody):
    """A `contacts` entry in `PUT /api/customers/:id`: with `id` it updates, without it creates."""

    _required: ClassVar[frozenset[str]] = frozenset({"first_name", "last_name", "is_primary"})

    id: UUID | None = None
    first_name: Name100 | None = None
    last_name: Name100 | None = None
    position: Short | None = None
    email: Email | None = None
    phone: Phone | None = None
    is_primary: bool | None = None


class ContactOut(ResponseBody):
    id: UUID
    customer_id: UUID
    first_name: str
    last_name: str
    position: str | None
    email: str | None
    phone: str | None
    is_primary: bool
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerSummary(ResponseBody):
    id: UUID
    first_name: str
    last_name: str
    company_name: str | None
    email: str | None
    status: str
    type: str | None

    @computed_field(description=NAME_HELP)  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        return display_name(self.first_name, self.last_name, self.company_name, self.type)


class ContactWithCustomer(ContactOut):
    customer: CustomerSummary
