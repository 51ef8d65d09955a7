from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, PlainSerializer, computed_field

from crm.common.pagination import PagedList
from crm.common.schemas import PatchBody, RequestBody, ResponseBody
from crm.common.types import Email, Long, Medium, Name100, Notes, Phone, PostalCode, Short, TaxId, display_name
from crm.contacts.schemas import NAME_HELP, ContactFields, ContactOut, NestedContactUpsert
from crm.customers.models import CustomerStatus, CustomerType

_CENT = Decimal("0.01")
# Exact amounts as the Order Service's contract writes them: a decimal string with two places.
Money = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]

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


_FIGURES_HELP = (
    "over the customer's orders in the Order Service except cancelled and returned ones, as the CRM's "
    "projection of them last saw them (see `orders_synced_at`)"
)


class CustomerWithFigures(CustomerOut):
    """A customer with what it has ordered (read-only; crm.orders.projection keeps it)."""

    total_orders: int = Field(description="how many orders, " + _FIGURES_HELP)
    total_spent: Money = Field(description='their total, a decimal string with two places ("0.00" when none)')
    first_order_date: datetime | None = Field(description="when the first of them was placed; null when none")
    last_order_date: datetime | None = Field(description="when the latest of them was placed; null when none")
    orders_synced_at: datetime | None = Field(
        description="when an order change last reached these figures; null: the projection never synced this "
        "customer (the figures then say no orders, which may not be so)"
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="total_spent / total_orders to the cent (half up); null when there are no orders "
        "(an average of nothing is not zero), as the statistics' averageAmount"
    )
    @property
    def average_order_value(self) -> Money | None:
        if not self.total_orders:
            return None
        return (self.total_spent / self.total_orders).quantize(_CENT, ROUND_HALF_UP)


class CustomerListItem(CustomerWithFigures):
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
