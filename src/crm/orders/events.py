"""The Order Service's order events (CloudEvents 1.0, structured JSON), validated into order states.

Untrusted input like its HTTP answers: bounded in size, every field checked; anything else is
`MalformedEvent`, which the consumer parks in its dead-letter queue.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crm.orders.projection.service import OrderState
from crm.orders.schemas import Money, OrderStatus, UtcDatetime

MAX_EVENT_BYTES = 64 * 1024
ROUTING_KEYS = ("order.created", "order.updated", "order.deleted")
EventType = Literal["orders.order.created", "orders.order.updated", "orders.order.deleted"]


class MalformedEvent(ValueError):
    """The message is not an order event of the contract; the text says why."""


class _Strictish(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _EventOrder(_Strictish):
    id: UUID
    customer_id: UUID
    status: OrderStatus | None = None
    total_amount: Money | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class _EventData(_Strictish):
    version: int = Field(ge=1, le=2**31 - 1)
    order: _EventOrder


class OrderEvent(_Strictish):
    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: EventType
    subject: str | None = Field(default=None, max_length=200)
    time: UtcDatetime
    data: _EventData


def parse_event(body: bytes) -> tuple[OrderEvent, OrderState]:
    if len(body) > MAX_EVENT_BYTES:
        raise MalformedEvent(f"event larger than {MAX_EVENT_BYTES} bytes")
    try:
        event = OrderEvent.model_validate(json.loads(body))
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValidationError):
            fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise MalformedEvent(fields) from None
        raise MalformedEvent(f"not JSON: {exc}") from None
    order = event.data.order
    if event.subject is not None and event.subject != str(order.id):
        raise MalformedEvent("subject is not data.order.id")
    deleted = event.type == "orders.order.deleted"
    if not deleted:
        missing = [n for n in ("status", "total_amount", "created_at") if getattr(order, n) is None]
        if missing:
            raise MalformedEvent("data.order lacks " + ", ".join(missing))
    updated_at = order.updated_at or event.time
    if deleted:
        # The deletion is newer than the order's last update even where the Order Service did not
        # move updated_at: the list's states (ordered by updated_at) must not outrank it.
        updated_at = max(updated_at, event.time)
    state = OrderState(
        order_id=order.id,
        customer_id=order.customer_id,
        status=order.status.value if order.status else None,
        total_amount=order.total_amount if order.total_amount is not None else Decimal(0),
        created_at=order.created_at,
        updated_at=updated_at,
        version=event.data.version,
        deleted=deleted,
    )
    return event, state
