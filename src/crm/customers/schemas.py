from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import Field, computed_field

from crm.common.pagination import PagedList
from crm.common.schemas import PatchBody, RequestBody, ResponseBody
from crm.common.types import Email, Long, Medium, Name100, Notes, Phone, PostalCode, Short, TaxId, display_name
from crm.contacts.schemas import NAME_HELP, ContactFields, ContactOut, NestedContactUpsert
from crm.customers.models import CustomerStatus, CustomerType

MAX_NESTED_CONTACTS = 50


class CustomerCreate(RequestBody):
    first_name: Name100
    last_name: Name100
    email: Email | None = None
    phone: Phone | None = None
    company_name: Medium | None = None
    tax_id: TaxId | None = None
    address: Long | None = None
    city: Short | None = None
    postal_code: PostalCode | None = None
    country: Short | None = None
    status: CustomerStatus = CustomerStatus.active
    type: CustomerType | None = None
    notes: Notes | None = None
    owner_id: UUID | None = Field(default=None, description="responsible user; defaults to the creator")
    contacts: list[ContactFields] = Field(default_factory=list, max_length=MAX_NESTED_CONTACTS)


class CustomerUpdate(PatchBody):
    _required: ClassVar[frozenset[str]] = frozenset({"first_name", "last_name", "status", "owner_id", "contacts"})

    first_name: Name100 | None = None
    last_name: Name100 | None = None
    email: Email | None = None
    phone: Phone | None = None
    company_name: Medium | None = None
    tax_id: TaxId | None = None
    address: Long | None = None
    city: Short | None = None
    postal_code: PostalCode | None = None
    country: Short | None = None
    status: CustomerStatus | None = None
    type: CustomerType | None = None
    notes: Notes | None = None
    owner_id: UUID | None = None
    contacts: list[NestedContactUpsert] | None = Field(default=None, max_length=MAX_NESTED_CONTACTS)


class CustomerOut(ResponseBody):
    id: UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    company_name: str | None
    tax_id: str | None
    address: str | None
    city: str | None
    postal_code: str | None
    country: str | None
    status: CustomerStatus
    type: CustomerType | None
    notes: str | None
    owner_id: UUID
    version: int
    created_at: datetime
    updated_at: datetime

    @computed_field(description=NAME_HELP)  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        return display_name(self.first_name, self.last_name, self.company_name, self.type)


class CustomerListItem(CustomerOut):
    primary_contact: ContactOut | None


class CustomerDetail(CustomerListItem):
    contacts: list[ContactOut] = Field(description="primary first, then newest")


class CustomerList(PagedList):
    customers: list[CustomerListItem]


class Segments(ResponseBody):
    total: int
    by_status: dict[str, int] = Field(alias="byStatus")
    by_type: dict[str, int] = Field(alias="byType")
    by_status_and_type: dict[str, dict[str, int]] = Field(alias="byStatusAndType")
