"""Erasure's receipt, as the issue specifies it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class ErasureReceipt(BaseModel):
    customer_id: UUID
    erased_at: datetime
    erased_by: UUID = Field(description="the admin who erased")
    contacts: int = Field(description="contacts removed (live and in the trash)")
    interactions: int = Field(description="interactions removed (live and in the trash)")
    history_entries_redacted: int = Field(description="history entries about them whose values became null")
