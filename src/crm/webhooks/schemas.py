"""Webhooks' wire format (snake_case fields, as the customers' records)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from crm.common.schemas import PatchBody, RequestBody
from crm.history.models import HistoryAction, HistoryEntity

TYPES = frozenset(f"crm.{entity.value}.{action.value}" for entity in HistoryEntity for action in HistoryAction)
PATTERNS = TYPES | {f"crm.{entity.value}.*" for entity in HistoryEntity} | {"*"}
TEST_TYPE = "crm.webhook.test"


def _known_pattern(value: str) -> str:
    if value not in PATTERNS:
        raise ValueError(
            "not an event type: use a type such as crm.customer.updated, an entity's types "
            "(crm.customer.*, crm.contact.*, crm.interaction.*) or * for all"
        )
    return value


EventPattern = Annotated[str, Field(max_length=64), AfterValidator(_known_pattern)]
Url = Annotated[str, Field(min_length=1, max_length=2048, description="http:// or https://, to a public address")]
Events = Annotated[
    list[EventPattern],
    Field(min_length=1, max_length=50, description="event types, `crm.<entity>.*` patterns, or `*`"),
]
Description = Annotated[str | None, Field(max_length=500)]


class WebhookCreate(RequestBody):
    url: Url
    events: Events
    description: Description = None


class WebhookUpdate(PatchBody):
    _required: ClassVar[frozenset[str]] = frozenset({"url", "events", "enabled"})

    url: Url | None = None
    events: Events | None = None
    description: Description = None
    enabled: bool | None = Field(default=None, description="true resumes a disabled subscription")


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="why it is disabled (by an admin, or every delivery failing)")
    disabled_at: datetime | None
    failing_since: datetime | None = Field(description="the first failed attempt since the last success")
    previous_secret_expires_at: datetime | None = Field(
        description="until then, the secret before the last rotation signs too"
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="the signing secret (Standard Webhooks `whsec_...`): shown only in this answer")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    number: int
    at: datetime
    status_code: int | None = Field(description="the receiver's answer, if it answered")
    error: str | None = Field(description="why the attempt failed (null when it succeeded)")
    duration_ms: int
    response: str | None = Field(description="the start of the answer's body (1 KiB)")
    next_attempt_at: datetime | None = Field(description="when the next attempt was scheduled (null: none)")


DeliveryStatus = Literal["pending", "succeeded", "failed"]


class DeliveryOut(BaseModel):
    id: UUID
    webhook_id: UUID = Field(description="the `webhook-id` header of every attempt: the event's id")
    type: str
    customer_id: UUID | None
    sequence: int | None = Field(description="the event's number among its customer's (null for test events)")
    status: DeliveryStatus
    next_attempt_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    attempts: list[AttemptOut]


class DeliveryPagination(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    limit: int
    has_next: bool = Field(alias="hasNext")
    next_cursor: str | None = Field(default=None, alias="nextCursor")


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    pagination: DeliveryPagination
