"""The Order Service's wire format, validated: its answers are untrusted input."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

MAX_ORDERS_PER_PAGE = 100
# DECIMAL(10,2) upstream; anything wider is not an amount this system produces.
_MAX_AMOUNT = Decimal("100000000000")
_CENT = Decimal("0.01")


class OrderStatus(StrEnum):
    new = "new"
    processing = "processing"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"
    returned = "returned"


def _to_decimal(value: Any) -> Decimal:
    """Accept "1250.99" or 1250.99 (some deployments send numbers); never go through float math."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a decimal string or number")
    try:
        # str() of a float is its shortest round-trip form: 1250.99 -> "1250.99", not 1250.9899...
        amount = Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ValueError("must be a decimal amount") from None
    if not amount.is_finite() or abs(amount) >= _MAX_AMOUNT:
        raise ValueError("amount out of range")
    # Cents, once, here: a JSON number may carry float noise (0.30000000000000004), and the
    # amounts a client sees in the list must add up to the sums in the statistics.
    return amount.quantize(_CENT, ROUND_HALF_UP)


Money = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    # Clients get the documented form: a decimal string with two places.
    PlainSerializer(lambda d: f"{d:.2f}", return_type=str),
]


def _as_utc(value: datetime) -> datetime:
    # The Order Service's dates are UTC. One sent without an offset must still compare with
    # the others (max() of naive and aware datetimes raises), and every date the CRM relays
    # or reports is then in one zone, as its own dates are.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class _Upstream(BaseModel):
    # Unknown upstream fields are dropped, not relayed: we only vouch for what we validated.
    model_config = ConfigDict(extra="ignore", frozen=True)


class OrderItem(_Upstream):
    id: UUID
    product_id: UUID
    quantity: int = Field(ge=0, le=10_000_000)
    unit_price: Money
    total_price: Money


class Order(_Upstream):
    id: UUID
    customer_id: UUID
    order_number: str = Field(max_length=64)
    status: OrderStatus
    total_amount: Money
    shipping_address: str | None = Field(default=None, max_length=2000)
    shipping_city: str | None = Field(default=None, max_length=255)
    shipping_postal_code: str | None = Field(default=None, max_length=64)
    shipping_country: str | None = Field(default=None, max_length=255)
    shipping_method: str | None = Field(default=None, max_length=255)
    payment_method: str | None = Field(default=None, max_length=255)
    notes: str | None = Field(default=None, max_length=10_000)
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    items: list[OrderItem] = Field(default_factory=list, max_length=10_000)


class OrderPagination(_Upstream):
    model_config = ConfigDict(extra="ignore", frozen=True, validate_by_name=True, validate_by_alias=True)

    total: int = Field(ge=0)
    page: int = Field(ge=1)
    limit: int = Field(ge=1, le=MAX_ORDERS_PER_PAGE)
    total_pages: int = Field(ge=0, alias="totalPages")
    has_next: bool = Field(alias="hasNext")
    has_prev: bool = Field(alias="hasPrev")


class OrdersPage(_Upstream):
    orders: list[Order] = Field(max_length=MAX_ORDERS_PER_PAGE)
    pagination: OrderPagination


class OrdersStatistics(BaseModel):
    """The `orders` part of a customer's statistics (see service.py for how it is computed)."""

    available: bool
    reason: str | None = None
    total: int | None = None
    total_amount: Decimal | None = Field(default=None, alias="totalAmount")
    average_amount: Decimal | None = Field(default=None, alias="averageAmount")
    last_order_date: datetime | None = Field(default=None, alias="lastOrderDate")
    by_status: dict[str, int] | None = Field(default=None, alias="byStatus")
    truncated: bool | None = None
