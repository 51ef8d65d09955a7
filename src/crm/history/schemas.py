"""History's wire format: entries as the issue specifies them (snake_case inside an entry)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class FieldChange(BaseModel):
    old: Any = Field(description="the value before the change (null for `created`, or after erasure)")
    new: Any = Field(description="the value after the change (null after erasure)")


class HistoryActor(BaseModel):
    user_id: UUID | None = Field(description="who made the change (null for changes no user made)")
    role: str | None


class HistoryEntryOut(BaseModel):
    id: UUID
    at: str = Field(description="when the change was written, UTC, microseconds: 2026-12-02T10:00:00.123456Z")
    entity: str = Field(description="customer, contact or interaction")
    entity_id: UUID
    customer_id: UUID = Field(description="the customer the record belongs (belonged) to")
    action: str = Field(description="created, updated, deleted, restored or erased")
    actor: HistoryActor
    request_id: str | None = Field(description="the X-Request-ID of the request that made the change")
    version: int | None = Field(description="the record's version after the change")
    changes: dict[str, FieldChange] = Field(
        description="the fields that changed: every field set for `created` (old null), none for `deleted`"
    )


class HistoryPagination(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    limit: int
    has_next: bool = Field(alias="hasNext")
    next_cursor: str | None = Field(
        default=None, alias="nextCursor", description="pass as `cursor` for the next (older) page; null on the last"
    )


class HistoryPage(BaseModel):
    history: list[HistoryEntryOut]
    pagination: HistoryPagination


def at_text(moment: datetime) -> str:
    """A moment as entries show it: UTC with a Z and all six fraction digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
