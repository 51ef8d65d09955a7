"""The trash's wire format (snake_case inside an item, as the issue specifies it)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class TrashEntity(StrEnum):
    customer = "customer"
    contact = "contact"
    interaction = "interaction"


class TrashItem(BaseModel):
    entity: TrashEntity
    id: UUID
    customer_id: UUID = Field(description="the customer the record belongs to (itself, for a customer)")
    summary: str = Field(description="enough to recognise it: a name, or an interaction's type and subject")
    deleted_at: datetime
    deleted_by: UUID | None = Field(description="the user who deleted it")
    purge_after: datetime = Field(description="when the purge removes it for good (deleted_at + CRM_TRASH_DAYS)")


class TrashPagination(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    limit: int
    has_next: bool = Field(alias="hasNext")
    next_cursor: str | None = Field(
        default=None, alias="nextCursor", description="pass as `cursor` for the next (older) page; null on the last"
    )


class TrashPage(BaseModel):
    trash: list[TrashItem]
    pagination: TrashPagination


class PurgeResult(BaseModel):
    deletions: int = Field(description="deletions purged (a customer with what its delete took is one)")
    records: int = Field(description="trashed records removed")
    ran: bool = Field(description="false when another instance held the purge lock")
